//! A CSI client over a Unix socket, for tests, benchmarks and the quickstart.
use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::proto::v1::{
    controller_client::ControllerClient, group_controller_client::GroupControllerClient,
    identity_client::IdentityClient, node_client::NodeClient,
};

/// Opens a gRPC channel to the CSI server listening on `socket`.
pub async fn connect(socket: &Path) -> Result<Channel, tonic::transport::Error> {
    let socket: PathBuf = socket.to_path_buf();
    // The URI is not used for routing; the connector below dials the socket.
    Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(socket).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }))
        .await
}

/// The CSI clients on one channel.
#[derive(Clone)]
pub struct CsiClients {
    pub identity: IdentityClient<Channel>,
    pub controller: ControllerClient<Channel>,
    pub group: GroupControllerClient<Channel>,
    pub node: NodeClient<Channel>,
}

impl CsiClients {
    pub async fn connect(socket: &Path) -> Result<Self, tonic::transport::Error> {
        let channel = connect(socket).await?;
        Ok(Self {
            identity: IdentityClient::new(channel.clone()),
            controller: ControllerClient::new(channel.clone()),
            group: GroupControllerClient::new(channel.clone()),
            node: NodeClient::new(channel),
        })
    }
}
