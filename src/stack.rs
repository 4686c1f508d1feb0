//! What both front ends start: the broker, and the API listening beside it, with every
//! worker given `BROKERTUI_URL`, `BROKERTUI_NAME`, its own `BROKERTUI_TOKEN` and
//! `BROKERTUI_BIN` so the agent inside can `brokertui send`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use color_eyre::eyre::WrapErr;

use crate::api::{self, ApiState, Tokens};
use crate::broker::{BrokerConfig, BrokerHandle};
use crate::config::Config;

pub struct Stack {
    pub broker: BrokerHandle,
    pub server: api::Server,
    pub tokens: Tokens,
    pub url: String,
    /// Config `priority`, when set: the raised priority, held while the stack runs and given
    /// back when it ends, or why it was not granted.
    pub priority: Option<Result<crate::sched::FrontPriority, crate::sched::PriorityError>>,
}

impl Stack {
    /// Why the configured `priority` was not granted, to show the user.
    pub fn priority_refused(&self) -> Option<String> {
        match &self.priority {
            Some(Err(e)) => Some(e.to_string()),
            _ => None,
        }
    }
}

/// Knobs of the stack that are not part of the config file.
#[derive(Debug, Clone, Copy)]
pub struct StackOptions {
    pub bind: SocketAddr,
    pub replay_events: usize,
    /// Journal relay messages and the fleet in the state dir (survive a restart).
    pub journal: bool,
    /// Forget the saved fleet instead of starting it again.
    pub fresh: bool,
}

impl StackOptions {
    pub fn loopback() -> Self {
        StackOptions {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            replay_events: 10_000,
            journal: false,
            fresh: false,
        }
    }
}

pub async fn start(
    config: &Config,
    opts: StackOptions,
    state_dir: &Path,
) -> color_eyre::Result<Stack> {
    // What brokers killed with their workers left running in their cgroups ends now.
    crate::teardown::cgroup::sweep_stale();
    let priority = config.priority.map(crate::sched::raise_front);
    match &priority {
        Some(Ok(p)) => tracing::info!(nice = p.nice, "front process priority raised"),
        Some(Err(e)) => tracing::warn!("{e}"),
        None => {}
    }
    let bind = opts.bind;
    let tokens = Tokens::new();
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .wrap_err_with(|| format!("cannot listen on {bind}"))?;
    let url = format!("http://{}", listener.local_addr()?);
    let exe = std::env::current_exe().wrap_err("cannot find the brokertui binary")?;
    let mut bc = BrokerConfig::new(exe.clone());
    bc.log_dir = Some(log_dir(state_dir));
    bc.request_timeout = config.request_timeout;
    bc.inject_template = config.inject_template.clone();
    bc.settle = config.settle;
    bc.replay_events = opts.replay_events;
    bc.agents = Arc::new(config.agents.clone());
    bc.hooks_dir = Some(state_dir.join("agents"));
    bc.worktree = config.worktree.clone();
    bc.idle_timeout = config.idle_timeout;
    bc.idle_warning = config.idle_warning;
    bc.terminal_colors = config.terminal_colors;
    let store = if opts.journal {
        let (store, mut loaded) = crate::broker::store::open(state_dir)?;
        if opts.fresh && !loaded.fleet.is_empty() {
            tracing::info!(
                workers = loaded.fleet.len(),
                "--fresh: the saved fleet is forgotten"
            );
            loaded.fleet.clear();
            store.forget_fleet();
        }
        Some((store, loaded))
    } else {
        None
    };
    let (env_url, env_tokens) = (url.clone(), tokens.clone());
    bc.worker_env = Some(Arc::new(move |name: &str| {
        vec![
            ("BROKERTUI_URL".to_string(), env_url.clone()),
            ("BROKERTUI_TOKEN".to_string(), env_tokens.issue_worker(name)),
            ("BROKERTUI_BIN".to_string(), exe.display().to_string()),
        ]
    }));
    let gone_tokens = tokens.clone();
    bc.worker_gone = Some(Arc::new(move |name: &str| gone_tokens.revoke_worker(name)));
    let broker = match store {
        Some((store, loaded)) => BrokerHandle::start_with_store(bc, store, loaded),
        None => BrokerHandle::start(bc),
    };
    let server = api::Server::start_on(
        listener,
        ApiState {
            broker: broker.clone(),
            tokens: tokens.clone(),
        },
    )?;
    Ok(Stack {
        broker,
        server,
        tokens,
        url,
        priority,
    })
}

/// Worker stderr logs: `<state dir>/logs/<name>.log`.
pub fn log_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("logs")
}
