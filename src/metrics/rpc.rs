//! The RPC metrics as one tower layer around the gRPC router: every CSI
//! call is counted (`lvsnap_rpc_requests_total{service,method,code}`) and
//! timed (`lvsnap_rpc_duration_seconds{service,method}`) here and nowhere
//! else. The code is the `grpc-status` of the response headers (tonic answers
//! an error with a trailers-only response, so it is there); a response
//! without one is a success whose status follows in the trailers, `OK` for a
//! unary call.
use std::task::{Context, Poll};
use std::time::Instant;

use futures::future::BoxFuture;
use tower::{Layer, Service};

use super::Metrics;

/// The gRPC router with the RPC metrics layer.
pub type CsiRouter = tonic::transport::server::Router<
    tower::layer::util::Stack<RpcLayer, tower::layer::util::Identity>,
>;

/// Counts and times CSI calls; without metrics it passes calls through.
#[derive(Clone, Default)]
pub struct RpcLayer {
    metrics: Option<Metrics>,
}

impl RpcLayer {
    pub fn new(metrics: Option<Metrics>) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for RpcLayer {
    type Service = RpcService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RpcService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The layer's service.
#[derive(Clone)]
pub struct RpcService<S> {
    inner: S,
    metrics: Option<Metrics>,
}

/// `/csi.v1.Controller/CreateSnapshot` → (`csi.v1.Controller`, `CreateSnapshot`).
pub fn split_path(path: &str) -> (&str, &str) {
    let path = path.strip_prefix('/').unwrap_or(path);
    path.split_once('/').unwrap_or(("unknown", path))
}

/// A gRPC status code as its canonical name (`OK`, `InvalidArgument`, …).
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "Canceled",
        Unknown => "Unknown",
        InvalidArgument => "InvalidArgument",
        DeadlineExceeded => "DeadlineExceeded",
        NotFound => "NotFound",
        AlreadyExists => "AlreadyExists",
        PermissionDenied => "PermissionDenied",
        ResourceExhausted => "ResourceExhausted",
        FailedPrecondition => "FailedPrecondition",
        Aborted => "Aborted",
        OutOfRange => "OutOfRange",
        Unimplemented => "Unimplemented",
        Internal => "Internal",
        Unavailable => "Unavailable",
        DataLoss => "DataLoss",
        Unauthenticated => "Unauthenticated",
    }
}

fn response_code<B>(res: &http::Response<B>) -> tonic::Code {
    res.headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(tonic::Code::from)
        .unwrap_or(tonic::Code::Ok)
}

impl<S, B, RB> Service<http::Request<B>> for RpcService<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Send,
    S::Future: Send + 'static,
    S::Error: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let Some(metrics) = self.metrics.clone() else {
            return Box::pin(self.inner.call(req));
        };
        let (service, method) = split_path(req.uri().path());
        let (service, method) = (service.to_string(), method.to_string());
        let started = Instant::now();
        let call = self.inner.call(req);
        Box::pin(async move {
            let res = call.await;
            let code = match &res {
                Ok(r) => response_code(r),
                Err(_) => tonic::Code::Unknown,
            };
            metrics.observe_rpc(&service, &method, code_name(code), started.elapsed());
            res
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_codes() {
        assert_eq!(
            split_path("/csi.v1.Controller/CreateSnapshot"),
            ("csi.v1.Controller", "CreateSnapshot")
        );
        assert_eq!(split_path("odd"), ("unknown", "odd"));
        assert_eq!(
            code_name(tonic::Code::ResourceExhausted),
            "ResourceExhausted"
        );
        let res = http::Response::builder()
            .header("grpc-status", "8")
            .body(())
            .unwrap();
        assert_eq!(response_code(&res), tonic::Code::ResourceExhausted);
        let ok = http::Response::builder().body(()).unwrap();
        assert_eq!(response_code(&ok), tonic::Code::Ok);
    }
}
