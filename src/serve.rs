//! `brokertui --serve`: the broker headless behind the API until SIGINT, SIGTERM, SIGHUP or
//! SIGQUIT.

use std::path::Path;

use color_eyre::eyre::WrapErr;

/// Status lines for whoever started us; a closed stdout (`--serve | head -1`) must not
/// take the broker down, so write errors are ignored.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, $($arg)*);
        let _ = out.flush();
    }};
}

use crate::client::{Connection, connection_path, write_connection};
use crate::config::Config;

pub async fn run(
    config: Config,
    opts: crate::stack::StackOptions,
    state_dir: &Path,
) -> color_eyre::Result<()> {
    // Handlers first: a SIGTERM right after the "serving on" line must still shut down
    // cleanly (workers ended, connection.json removed), not kill us by default.
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    // A closed terminal or a quit key ends it the same orderly way (no stale connection.json).
    let mut hup = signal(SignalKind::hangup())?;
    let mut quit = signal(SignalKind::quit())?;
    let stack = crate::stack::start(&config, opts, state_dir).await?;
    if let Some(why) = stack.priority_refused() {
        eprintln!("warning: {why}");
    }
    let conn = Connection {
        url: stack.url.clone(),
        token: stack.tokens.admin().to_string(),
        pid: std::process::id(),
    };
    let path = write_connection(state_dir, &conn)
        .wrap_err_with(|| format!("cannot write {}", connection_path(state_dir).display()))?;
    say!("brokertui serving on {}", stack.url);
    say!("connection (url, token): {}", path.display());
    let restored = stack.broker.list().await.unwrap_or_default();
    for w in &restored {
        say!("restored {} (pid {})", w.name, w.worker_pid);
    }
    for w in &config.workers {
        if restored.iter().any(|r| r.name == w.name) {
            continue;
        }
        match stack.broker.spawn(w.to_spawn_spec()).await {
            Ok(info) => say!("spawned {} (pid {})", info.name, info.pid.unwrap_or(0)),
            Err(e) => say!("could not spawn {}: {e}", w.name),
        }
    }
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
        _ = hup.recv() => {}
        _ = quit.recv() => {}
    }
    say!("shutting down");
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
