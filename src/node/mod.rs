//! The node side: the executor that reconciles the records assigned to this
//! node with its volume group (the part of Cinder's volume manager and LVM
//! driver that runs on the host).
mod content;
mod copy;
pub mod data;
pub mod events;
mod executor;
pub mod host;
mod volumes;

pub use data::{Access, DataPath, Stats};
pub use events::{EventSink, Phase, RecordEvent};
pub use executor::{Executor, NodeSettings};
pub use host::{Host, NodeError};
