//! CSI gRPC glue: one file per CSI service. Handlers parse requests into
//! domain types, call the domain, and map domain errors to `tonic::Status`
//! in one place per service.
pub mod controller;
mod convert;
pub mod group;
pub mod identity;
pub mod node;

pub use controller::ControllerService;
pub use convert::{grpc_code, status};
pub use group::GroupControllerService;
pub use identity::IdentityService;
pub use node::NodeService;
