//! A server running in this process (tests, benchmarks): where it listens, stopped on drop
//! or by [`Running::shutdown`], which waits for it and returns how it ended; and the accepted
//! connections every gRPC listener of both services serves ([`incoming`]).

use std::future::Future;
use std::net::SocketAddr;

/// The connections accepted on a gRPC listener, with Nagle's algorithm off (`TCP_NODELAY`,
/// as gRPC servers set it): a reply's frames leave when written instead of waiting for the
/// peer's acknowledgement of the previous ones.
pub fn incoming(listener: tokio::net::TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}

pub struct Running {
    pub addr: SocketAddr,
    /// Where `GET /metrics` answers, when the server has an admin port.
    pub metrics_addr: Option<SocketAddr>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Running {
    /// Spawns `serve(stop)`, where `stop` resolves on shutdown or drop.
    pub fn spawn<F, Fut>(addr: SocketAddr, metrics_addr: Option<SocketAddr>, serve: F) -> Self
    where
        F: FnOnce(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(serve(Box::pin(async {
            let _ = rx.await;
        })));
        Running {
            addr,
            metrics_addr,
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.handle.take() {
            Some(h) => h.await?,
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}
