//! The fake API server over HTTP on a loopback port, with a kubeconfig
//! pointing at it, so a real `lvsnap controller` / `lvsnap node` process
//! (kube's `Client::try_default` through `KUBECONFIG`) can be tested and
//! benchmarked without a kube-apiserver. Every route of the in-process
//! server is served (the requests are handed to it unchanged).
//!
//! "Unreachable" is a closed port: `stop()` closes the listener and every
//! open connection (clients get connection refused / reset), `restart()`
//! listens on the same port again, with the same state.
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
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for HttpApiServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
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

/// Accepts connections until aborted; aborting drops the listener and,
/// with the JoinSet, every connection, as a dying API server would.
fn serve(listener: TcpListener, api: FakeApiServer) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        while let Ok((stream, _)) = listener.accept().await {
            while connections.try_join_next().is_some() {}
            let api = api.clone();
            connections.spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let api = api.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let bytes = match body.collect().await {
                                Ok(b) => b.to_bytes(),
                                Err(e) => {
                                    return Ok::<_, std::convert::Infallible>(
                                        super::Failure::bad_request(e.to_string()).into_response(),
                                    );
                                }
                            };
                            let req =
                                http::Request::from_parts(parts, kube::client::Body::from(bytes));
                            api.oneshot(req).await
                        }
                    });
                // Watches are long-lived streams; errors end one connection only.
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

impl HttpApiServer {
    /// Serves `api` on 127.0.0.1 on a free port.
    pub async fn start(api: FakeApiServer) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let task = Some(serve(listener, api.clone()));
        Ok(Self { api, addr, task })
    }

    /// Closes the port and every open connection: clients now get
    /// "connection refused". The state is kept for `restart`.
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await; // the listener is closed once this returns
        }
    }

    /// Listens on the same port again (after `stop`; a no-op while
    /// serving). Fails if another process took the port meanwhile.
    pub async fn restart(&mut self) -> std::io::Result<()> {
        if self.task.is_none() {
            let listener = TcpListener::bind(self.addr).await?;
            self.task = Some(serve(listener, self.api.clone()));
        }
        Ok(())
    }

    /// Whether the port is open.
    pub fn is_serving(&self) -> bool {
        self.task.is_some()
    }

    /// Writes the kubeconfig into `dir` and returns its path.
    pub fn write_kubeconfig(&self, dir: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
        let path = dir.join("kubeconfig");
        std::fs::write(&path, kubeconfig(self.addr))?;
        Ok(path)
    }
}
