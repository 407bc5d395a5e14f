//! The fake API server over HTTP on a loopback port, with a kubeconfig
//! pointing at it, so a real `lvsnap controller` / `lvsnap node` process
//! (kube's `Client::try_default` through `KUBECONFIG`) can be tested and
//! benchmarked without a kube-apiserver.
use std::net::SocketAddr;

use http_body_util::BodyExt;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tower::ServiceExt;

use super::FakeApiServer;

/// A running HTTP front; stops serving when dropped.
pub struct HttpApiServer {
    pub api: FakeApiServer,
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HttpApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A kubeconfig for a plain-HTTP server at `addr` (no credentials).
pub fn kubeconfig(addr: SocketAddr) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{addr}\n\
         contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n\
         current-context: fake\nusers:\n- name: fake\n  user: {{}}\n"
    )
}

impl HttpApiServer {
    /// Serves `api` on 127.0.0.1 on a free port.
    pub async fn start(api: FakeApiServer) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = api.clone();
        let task = tokio::spawn(async move {
            // Connections live in this set: dropping the server (aborting
            // this task) closes them all, as a dying API server would.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                while connections.try_join_next().is_some() {}
                let api = shared.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: http::Request<hyper::body::Incoming>| {
                            let api = api.clone();
                            async move {
                                let (parts, body) = req.into_parts();
                                let bytes = match body.collect().await {
                                    Ok(b) => b.to_bytes(),
                                    Err(e) => {
                                        return Ok::<_, std::convert::Infallible>(super::status(
                                            http::StatusCode::BAD_REQUEST,
                                            "BadRequest",
                                            e.to_string(),
                                        ));
                                    }
                                };
                                let req = http::Request::from_parts(
                                    parts,
                                    kube::client::Body::from(bytes),
                                );
                                api.oneshot(req).await
                            }
                        },
                    );
                    // Watches are long-lived streams; errors end one connection only.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { api, addr, task })
    }

    /// Writes the kubeconfig into `dir` and returns its path.
    pub fn write_kubeconfig(&self, dir: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
        let path = dir.join("kubeconfig");
        std::fs::write(&path, kubeconfig(self.addr))?;
        Ok(path)
    }
}
