//! The HTTP + WebSocket API (docs/api.md), served by `--serve` and, on loopback, by the TUI so
//! agents inside workers can `brokertui send`.
//!
//! Every route is a thin layer over [`BrokerHandle`]: request/response routes call the same
//! typed wrappers over `request_worker` the TUI uses, and errors map to status codes in one
//! place ([`error`]). See `docs/api.md` for every route with a curl example.

pub mod auth;
pub mod error;
mod events;
mod extract;
pub mod listen;
mod routes;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use tokio::net::TcpListener;

use crate::broker::BrokerHandle;
pub use auth::{Scope, Tokens};

/// Largest request body accepted; larger ones get 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Clone)]
pub struct ApiState {
    pub broker: BrokerHandle,
    pub tokens: Tokens,
}

pub fn router(state: ApiState) -> Router {
    let api = Router::new()
        .route("/api/spawned", get(routes::list))
        .route("/api/spawn", post(routes::spawn))
        .route("/api/spawned/{name}", delete(routes::release))
        .route("/api/input/{name}", post(routes::input))
        .route("/api/resize/{name}", post(routes::resize))
        .route("/api/spawned/{name}/snapshot", get(routes::snapshot))
        .route(
            "/api/spawned/{name}/mode",
            get(routes::get_mode).put(routes::set_mode),
        )
        .route("/api/spawned/{name}/pending", get(routes::pending))
        .route("/api/spawned/{name}/diff", get(routes::diff))
        .route("/api/spawned/{name}/restart", post(routes::restart))
        .route("/api/spawned/{name}/flush", post(routes::flush))
        .route("/api/send", post(routes::send))
        .route("/api/messages", get(routes::messages))
        .route("/api/spawned/{name}/agent", get(routes::agent))
        .route("/api/hook", post(routes::hook))
        .route("/api/messages/{id}", delete(routes::drop_message))
        .route("/api/events", get(events::events))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            extract::authenticate,
        ));
    Router::new()
        .route("/health", get(routes::health))
        .merge(api)
        .fallback(routes::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(extract::close_after_refused_body))
        .with_state(state)
}

/// A running API server.
pub struct Server {
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Binds `addr` (port 0 picks one) and serves until [`Server::stop`].
    pub async fn start(addr: SocketAddr, state: ApiState) -> std::io::Result<Server> {
        Self::start_on(TcpListener::bind(addr).await?, state)
    }

    /// Serves on an already bound listener.
    pub fn start_on(listener: TcpListener, state: ApiState) -> std::io::Result<Server> {
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = router(state);
        let limits = listen::Limits::for_this_process();
        let task = tokio::spawn(async move {
            listen::serve(listener, app, limits, async {
                let _ = rx.await;
            })
            .await;
        });
        Ok(Server {
            addr,
            shutdown: Some(tx),
            task,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets requests in flight finish (bounded), and returns.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(3), &mut self.task).await;
        self.task.abort();
    }
}
