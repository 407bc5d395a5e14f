//! Serves CSI services over a Unix domain socket, with a graceful shutdown.
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::Future;
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;

/// Why a socket could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("--endpoint: {0} exists and is not a socket; refusing to remove it")]
    NotASocket(PathBuf),
    #[error("--endpoint: {0} is in use by a running process")]
    InUse(PathBuf),
    #[error("--endpoint: cannot create the socket directory {0}: {1}")]
    Dir(PathBuf, io::Error),
    #[error("--endpoint: cannot bind {0}: {1}")]
    Bind(PathBuf, io::Error),
}

/// Removes the socket file when dropped, if it is still a socket.
pub struct SocketGuard {
    path: PathBuf,
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        // Only remove what is still a socket (another process may have replaced it).
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.file_type().is_socket()) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A bound listener and the guard that removes its file.
pub struct BoundSocket {
    pub listener: UnixListener,
    pub guard: SocketGuard,
}

/// Binds `path`, removing a stale socket file left by a previous run, but
/// never a regular file, and never a socket another process still serves.
pub async fn bind(path: &Path) -> Result<BoundSocket, BindError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if tokio::net::UnixStream::connect(path).await.is_ok() {
                return Err(BindError::InUse(path.to_path_buf()));
            }
            std::fs::remove_file(path).map_err(|e| BindError::Bind(path.to_path_buf(), e))?;
        }
        Ok(_) => return Err(BindError::NotASocket(path.to_path_buf())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(BindError::Bind(path.to_path_buf(), e)),
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| BindError::Dir(dir.to_path_buf(), e))?;
    }
    let listener = UnixListener::bind(path).map_err(|e| BindError::Bind(path.to_path_buf(), e))?;
    Ok(BoundSocket {
        listener,
        guard: SocketGuard {
            path: path.to_path_buf(),
        },
    })
}

/// How long in-flight calls may take to finish after a shutdown signal.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `router` on `socket` until `shutdown` resolves, lets in-flight
/// calls finish for at most [`DRAIN_TIMEOUT`] (clients such as kubelet keep
/// idle connections open), then removes the socket file.
pub async fn serve(
    router: crate::metrics::rpc::CsiRouter,
    socket: BoundSocket,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let BoundSocket { listener, guard } = socket;
    tracing::info!(socket = %guard.path.display(), "serving CSI");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = router.serve_with_incoming_shutdown(UnixListenerStream::new(listener), async {
        let _ = stop_rx.await;
    });
    tokio::pin!(serving);
    let result = tokio::select! {
        result = &mut serving => result,
        () = shutdown => {
            let _ = stop_tx.send(());
            match tokio::time::timeout(DRAIN_TIMEOUT, &mut serving).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::warn!("connections still open after {DRAIN_TIMEOUT:?}; exiting anyway");
                    Ok(())
                }
            }
        }
    };
    drop(guard);
    result
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                _ = int.recv() => tracing::info!("SIGINT: shutting down"),
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
