//! The API's accept loop: every connection gets a deadline for its request headers (also
//! between two requests on a kept-alive connection), and at most [`Limits::connections`] are
//! open at once. One past the cap is answered `503 too_many_connections` and closed at once,
//! so connections that send nothing cannot hold the broker's file descriptors — which its
//! workers and its journal need too — and the API frees itself as their deadlines pass.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// How long a client gets to send a request's headers, counted from when the connection
/// opened or the previous response went out.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// File descriptors kept out of the API's reach for workers (two pipes each), the journal
/// and logs.
const FDS_RESERVED: u64 = 128;
/// The most connections served at once, whatever the fd limit.
const MAX_CONNECTIONS: u64 = 4096;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub connections: usize,
}

impl Limits {
    /// A cap that leaves room under the process's fd limit (raised to its hard limit first).
    pub fn for_this_process() -> Limits {
        let soft = raise_fd_limit();
        let room = soft.saturating_sub(FDS_RESERVED) / 2;
        Limits {
            connections: room.clamp(16, MAX_CONNECTIONS) as usize,
        }
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard one; returns the soft limit now in force.
pub fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur
}

const REFUSAL_BODY: &str = r#"{"error":{"code":"too_many_connections","message":"the broker has as many connections open as it serves at once; retry shortly"}}"#;

/// Serves `app` on `listener` until `shutdown` resolves; then lets the connections in flight
/// finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.connections));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of fds, or a connection reset before accept: back off briefly.
                    tracing::warn!("API accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tokio::spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn = http
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()))
            .with_upgrades();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let ended = tokio::select! {
                ended = conn.as_mut() => ended,
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!("API connection ended: {e}");
            }
            drop(slot);
        });
    }
    // Requests in flight finish; idle connections close. Every slot back means all are done.
    drop(stop_tx);
    let _ = slots.acquire_many(limits.connections as u32).await;
}

async fn refuse(mut stream: tokio::net::TcpStream) {
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{REFUSAL_BODY}",
        REFUSAL_BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}
