//! lvsnap: a CSI driver for LVM volumes and snapshots with OpenStack Cinder's
//! record and quota semantics.
//!
//! Layout mirrors the architecture (see `docs/architecture.md`):
//! - [`csi`]: thin gRPC glue, one file per CSI service;
//! - [`cli`]: the `lvsnap` command line and process wiring;
//! - [`config`]: validated configuration shared by all modes;
//! - [`server`]: serving the CSI services on a Unix socket;
//! - [`driver`]: the one assembly of a running driver.
#![forbid(unsafe_code)]

#[cfg(feature = "bench")]
pub mod bench;
pub mod cli;
pub mod client;
pub mod config;
pub mod controller;
pub mod csi;
pub mod driver;
pub mod failpoint;
pub mod lvm;
pub mod metrics;
pub mod node;
pub mod proto;
pub mod quota;
pub mod records;
pub mod server;
pub mod store;
