//! The Kubernetes client every lvsnap process uses: in-cluster service
//! account, `KUBECONFIG` or `~/.kube/config` (kube's inference), or a given
//! kubeconfig file; every request says `User-Agent: lvsnap/<version>` so the
//! API server's audit log tells lvsnap's requests apart.
use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// What lvsnap's requests carry as their User-Agent.
pub const USER_AGENT: &str = concat!("lvsnap/", env!("CARGO_PKG_VERSION"));

/// Why no client could be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("kubernetes: cannot read kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error(
        "kubernetes: no usable client configuration (in-cluster service account or KUBECONFIG): {0}"
    )]
    Infer(#[source] kube::config::InferConfigError),
    #[error("kubernetes: cannot build a client: {0}")]
    Build(#[source] kube::Error),
}

/// The client configuration: `kubeconfig` if given, else inferred.
pub async fn kube_config(kubeconfig: Option<&Path>) -> Result<Config, ClientError> {
    let mut config = match kubeconfig {
        Some(path) => {
            let wrap = |source| ClientError::Kubeconfig {
                path: path.display().to_string(),
                source,
            };
            let file = Kubeconfig::read_from(path).map_err(wrap)?;
            Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .map_err(wrap)?
        }
        None => Config::infer().await.map_err(ClientError::Infer)?,
    };
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(USER_AGENT),
    ));
    Ok(config)
}

/// A client on [`kube_config`].
pub async fn kube_client(kubeconfig: Option<&Path>) -> Result<Client, ClientError> {
    Client::try_from(kube_config(kubeconfig).await?).map_err(ClientError::Build)
}
