//! A double as its tests hold it: the server task on a loopback port, its own state, the calls it recorded and its
//! faults. Dropping it stops the server.

use crate::faults::Faults;
use crate::support::{RecordedCall, Recorder};
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// A double running on a loopback port: its own state (`S`), and what every double offers — its base URL, the calls
/// it recorded, its faults. Dropping it stops the server. `HubSpotDouble` and `StreamDouble` are its two kinds.
pub struct Double<S> {
    pub(crate) state: Arc<S>,
    recorder: Recorder,
    faults: Faults,
    server: Server,
}

impl<S> Double<S> {
    /// Serves `router` on `addr`; `recorder` and `faults` are the ones the routes in `state` use.
    pub(crate) async fn serve(
        addr: SocketAddr,
        state: Arc<S>,
        recorder: Recorder,
        faults: Faults,
        router: Router,
        name: &'static str,
    ) -> std::io::Result<Self> {
        let server = Server::start(addr, router, name, &recorder).await?;
        Ok(Self {
            state,
            recorder,
            faults,
            server,
        })
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Every request, in arrival order (in-flight ones have `status` 0).
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.recorder.calls()
    }

    /// Requests to one route, by the double's route names (listed on each double).
    pub fn call_count(&self, route: &str) -> usize {
        self.recorder.count(route)
    }
}

/// A running axum server; dropping it stops accepting connections.
struct Server {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Server {
    /// Binds, starts `recorder`'s traffic log (its file is named after the port), then serves.
    async fn start(
        addr: SocketAddr,
        router: Router,
        name: &'static str,
        recorder: &Recorder,
    ) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        recorder.log_traffic(name, addr.port())?;
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::error!(%error, double = name, "test double server stopped");
            }
        });
        Ok(Self { addr, task })
    }

    fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}
