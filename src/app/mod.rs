//! The interactive TUI: the broker in-process (with its API on loopback, so agents can
//! `brokertui send`), and a loop that turns terminal input, broker events and worker output
//! into [`App`](crate::ui::state::App) state and draws it.
//!
//! Rooms: [`terminal`] (raw mode, the alternate screen, signals), [`runner`] (the loop and
//! what it does with each event), [`outputs`] (every pane's output subscription, polled by
//! the loop), [`new_worker`] (the `n` dialog's command line), [`clipboard`] (copied text to
//! the outer terminal and the system).

mod clipboard;
mod new_worker;
mod outputs;
mod runner;
mod terminal;

use std::path::Path;
use std::time::Duration;

use crate::backend::{Backend, RemoteBroker};
use crate::config::Config;
use crate::ui::state::ClientMode;
pub use new_worker::parse_new_worker;
use runner::run_loop;
use terminal::{Signals, TerminalGuard};

/// Minimum time between two frames (~60 frames/s).
pub const FRAME: Duration = Duration::from_millis(16);
/// Who relay messages typed in the TUI are from.
pub const HUMAN: &str = "human";

pub async fn run(mut config: Config, state_dir: &Path) -> color_eyre::Result<()> {
    let signals = Signals::install()?;
    if config.terminal_colors.is_none() {
        config.terminal_colors = terminal::outer_colors();
    }
    let stack =
        crate::stack::start(&config, crate::stack::StackOptions::loopback(), state_dir).await?;
    tracing::info!(url = %stack.url, "TUI started; API on loopback");
    let opts = RunOptions {
        spawn: config.workers.iter().map(|w| w.to_spawn_spec()).collect(),
        notes: stack.priority_refused().into_iter().collect(),
        ..RunOptions::default()
    };
    let result = match TerminalGuard::enter() {
        Ok(mut guard) => {
            run_loop(
                &mut guard.terminal,
                &stack.broker,
                &config,
                state_dir,
                signals,
                opts,
            )
            .await
        }
        Err(e) => Err(e),
    };
    // The terminal is restored (guard dropped) before workers are ended, so a slow
    // shutdown never leaves the user staring at a dead screen.
    stack.server.stop().await;
    stack.broker.shutdown().await;
    result
}

/// What a TUI session shows and owns.
#[derive(Default)]
pub struct RunOptions {
    /// Workers to start (the in-process broker).
    pub spawn: Vec<crate::broker::SpawnSpec>,
    /// Show only this worker (`ctl attach`).
    pub only: Option<String>,
    /// Attach to the (only or first) worker at start, in this client mode.
    pub attach: Option<ClientMode>,
    /// A client of a remote broker: quitting leaves the workers running.
    pub remote: bool,
    /// Said in the alerts when the TUI starts (a setting the system refused).
    pub notes: Vec<String>,
}

/// The TUI against a running `--serve` broker (`--connect`, `ctl attach`): same panes, keys
/// and alerts; quitting leaves every worker running for the next client.
pub async fn run_remote(
    broker: RemoteBroker,
    config: &Config,
    state_dir: &Path,
    opts: RunOptions,
) -> color_eyre::Result<()> {
    let signals = Signals::install()?;
    // Fail before touching the terminal if the broker is not there.
    let workers = Backend::list(&broker).await.map_err(|e| match e {
        // It names the broker's address itself.
        crate::broker::BrokerError::WorkerUnavailable { reason, .. } => {
            color_eyre::eyre::eyre!(reason)
        }
        e => color_eyre::eyre::eyre!("the broker at {}: {e}", broker.url()),
    })?;
    if let Some(name) = &opts.only
        && !workers.iter().any(|w| &w.name == name)
    {
        color_eyre::eyre::bail!("no worker named {name:?} at {}", broker.url());
    }
    let mut guard = TerminalGuard::enter()?;
    let opts = RunOptions {
        remote: true,
        ..opts
    };
    run_loop(
        &mut guard.terminal,
        &broker,
        config,
        state_dir,
        signals,
        opts,
    )
    .await
}
