//! `--metrics-address`: `GET /metrics` (Prometheus text format 0.0.4) and
//! `GET /healthz` over plain HTTP/1 (hyper), one task per connection.
use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;

use super::Metrics;

/// Why `--metrics-address` cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum MetricsAddrError {
    #[error("--metrics-address: {0:?} is not HOST:PORT (e.g. 0.0.0.0:9090 or [::]:9090)")]
    Parse(String),
    #[error("--metrics-address: cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
}

/// Parses and binds `--metrics-address` (so a bad one fails at startup).
pub async fn bind(raw: &str) -> Result<TcpListener, MetricsAddrError> {
    let addr: SocketAddr = raw
        .parse()
        .map_err(|_| MetricsAddrError::Parse(raw.to_string()))?;
    TcpListener::bind(addr)
        .await
        .map_err(|e| MetricsAddrError::Bind(addr, e))
}

async fn handle(
    metrics: Metrics,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, content_type: &'static str, body: String| {
        let mut res = Response::new(Full::new(Bytes::from(body)));
        *res.status_mut() = status;
        if let Ok(v) = http::HeaderValue::from_str(content_type) {
            res.headers_mut().insert(http::header::CONTENT_TYPE, v);
        }
        Ok(res)
    };
    let text = "text/plain; charset=utf-8";
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => reply(
            StatusCode::OK,
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            metrics.render().await,
        ),
        (&Method::GET, "/healthz") => reply(StatusCode::OK, text, "ok\n".into()),
        (_, "/metrics" | "/healthz") => {
            reply(StatusCode::METHOD_NOT_ALLOWED, text, "GET only\n".into())
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            text,
            "not found: /metrics, /healthz\n".into(),
        ),
    }
}

/// Serves `/metrics` and `/healthz` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Metrics) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving /metrics and /healthz");
    }
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "metrics: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let service = hyper::service::service_fn(move |req| handle(metrics.clone(), req));
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                tracing::debug!(%peer, error = %e, "metrics connection ended");
            }
        });
    }
}
