//! `brokertui --serve`: the broker headless behind the API until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::Path;

use color_eyre::eyre::WrapErr;

use crate::client::{Connection, connection_path, write_connection};
use crate::config::Config;

pub async fn run(config: Config, bind: SocketAddr, state_dir: &Path) -> color_eyre::Result<()> {
    let stack = crate::stack::start(&config, bind, state_dir).await?;
    let conn = Connection {
        url: stack.url.clone(),
        token: stack.tokens.admin().to_string(),
        pid: std::process::id(),
    };
    let path = write_connection(state_dir, &conn)
        .wrap_err_with(|| format!("cannot write {}", connection_path(state_dir).display()))?;
    println!("brokertui serving on {}", stack.url);
    println!("connection (url, token): {}", path.display());
    for w in &config.workers {
        match stack.broker.spawn(w.to_spawn_spec()).await {
            Ok(info) => println!("spawned {} (pid {})", info.name, info.pid.unwrap_or(0)),
            Err(e) => eprintln!("could not spawn {}: {e}", w.name),
        }
    }
    wait_for_signal().await;
    println!("shutting down");
    stack.server.stop().await;
    stack.broker.shutdown().await;
    // Only remove the file if it is still ours (another broker may have replaced it).
    if std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str::<Connection>(&t).ok())
        .is_some_and(|c| c.pid == conn.pid)
    {
        let _ = std::fs::remove_file(&path);
    }
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
