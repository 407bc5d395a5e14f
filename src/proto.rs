//! The CSI wire protocol generated from `proto/csi.proto` (package `csi.v1`).
#![allow(clippy::all, clippy::pedantic, missing_docs)]

pub mod csi {
    pub mod v1 {
        tonic::include_proto!("csi.v1");
    }
}

pub use csi::v1;
