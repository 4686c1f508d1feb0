//! The `brokertui` binary: argument parsing and the front ends. See the README.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use color_eyre::eyre::{WrapErr, bail};

use brokertui::client::{self, ctl::CtlArgs};
use brokertui::config::{self, Config};
use brokertui::worker::{self, WorkerArgs};

#[derive(Parser, Debug)]
#[command(
    name = "brokertui",
    version,
    about = "Run a fleet of interactive programs (AI agents, shells) in PTYs: watch them, drive them, relay messages between them.",
    after_help = "With no config and no -w, one worker runs $SHELL. Press ? in the TUI for keys."
)]
struct Cli {
    /// Config file (default: ./brokertui.toml if present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// A worker: NAME=CMD (repeatable), e.g. -w a=bash -w b='python3 -q'.
    #[arg(short = 'w', long = "worker", value_name = "NAME=CMD")]
    workers: Vec<String>,
    /// Run each -w worker in its own git worktree (see docs/workspaces.md).
    #[arg(long)]
    worktree: bool,
    /// Run headless: the broker behind the HTTP + WebSocket API, for scripts.
    #[arg(long)]
    serve: bool,
    /// With --serve: do not start the saved fleet again (it is forgotten); messages are kept.
    #[arg(long, requires = "serve")]
    fresh: bool,
    /// Where the API listens (the TUI also listens, on a random loopback port).
    #[arg(long, default_value = "127.0.0.1:0")]
    bind: SocketAddr,
    /// Allow --bind on a non-loopback address (anyone who can reach it and has the token controls your workers).
    #[arg(long)]
    allow_remote: bool,
    /// Attach the TUI to a running `--serve` broker (default: its connection.json); quitting
    /// leaves its workers running.
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    connect: Option<String>,
    /// Token for --connect (default: $BROKERTUI_TOKEN, then connection.json).
    #[arg(long)]
    token: Option<String>,
    /// Events kept for WebSocket `?since=` replay.
    #[arg(long, default_value_t = 10_000, hide = true)]
    replay_events: usize,
    /// State dir: connection.json, logs (default $XDG_STATE_HOME/brokertui or ~/.local/state/brokertui).
    #[arg(long, global = true)]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Talk to a running broker (`--serve`) from scripts: JSON out.
    Ctl(CtlArgs),
    /// Send a relay message from inside a worker: `brokertui send TO BODY` (`-` reads stdin).
    Send {
        to: String,
        body: String,
        /// When it may be typed: `idle` (the default for agents) or `now`.
        #[arg(long, value_parser = ["idle", "now"])]
        when: Option<String>,
        /// Block until it is submitted (exit 0), unconfirmed (9) or this long passed (8).
        #[arg(long)]
        wait: bool,
        /// How long --wait waits, in milliseconds.
        #[arg(long, default_value_t = 60_000)]
        wait_ms: u64,
    },
    /// What an agent's hook runs (brokertui installs the hooks): posts stdin to the broker.
    #[command(hide = true)]
    Hook { event: String },
    /// Internal: the PTY worker process the broker spawns.
    #[command(hide = true)]
    Worker(WorkerArgs),
}

fn main() -> std::process::ExitCode {
    // Panics keep color-eyre's report; an error is the user's to read: one line, no backtrace.
    if let Err(e) = color_eyre::install() {
        eprintln!("brokertui: {e}");
    }
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("brokertui: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> color_eyre::Result<()> {
    match cli.command {
        Some(Command::Worker(args)) => {
            init_logging(None);
            worker::run(args)
        }
        Some(Command::Ctl(args)) => {
            let rt = runtime()?;
            match rt.block_on(client::ctl::run(args))? {
                client::ctl::Outcome::Exit(code) => std::process::exit(code),
                client::ctl::Outcome::Attach {
                    client,
                    name,
                    mode,
                    state_dir,
                } => {
                    use brokertui::ui::state::ClientMode;
                    let attach = match mode.as_str() {
                        "view" => None,
                        "relay" => Some(ClientMode::Relay),
                        _ => Some(ClientMode::Drive),
                    };
                    let opts = brokertui::app::RunOptions {
                        only: Some(name),
                        attach,
                        ..Default::default()
                    };
                    let remote = brokertui::backend::RemoteBroker::new(client);
                    rt.block_on(brokertui::app::run_remote(
                        remote,
                        &Config::default(),
                        &state_dir,
                        opts,
                    ))
                }
            }
        }
        Some(Command::Send {
            to,
            body,
            when,
            wait,
            wait_ms,
        }) => {
            let wait = wait.then(|| std::time::Duration::from_millis(wait_ms));
            let code = runtime()?.block_on(client::send(&to, &body, when.as_deref(), wait))?;
            std::process::exit(code)
        }
        Some(Command::Hook { event }) => {
            let code = runtime()?.block_on(client::wait::hook(&event));
            std::process::exit(code)
        }
        None => {
            let state_dir = client::state_dir(cli.state_dir.as_deref());
            let checked = brokertui::fsutil::private_dir(&state_dir)
                .wrap_err_with(|| format!("cannot use state dir {}", state_dir.display()))?;
            if let brokertui::fsutil::DirCheck::Tightened { was } = checked {
                eprintln!(
                    "warning: state dir {} was open to others (mode {was:o}); it holds tokens and messages, so it is now 0700",
                    state_dir.display()
                );
            }
            init_logging(Some(&state_dir.join("brokertui.log")));
            let mut config = match Config::discover(cli.config.as_deref())? {
                Some((path, config)) => {
                    tracing::info!("config from {}", path.display());
                    config
                }
                None => Config::default(),
            };
            let mut given = std::collections::HashSet::new();
            for w in &cli.workers {
                // The message names the argument already.
                let mut worker =
                    config::parse_worker_arg(w).map_err(|e| color_eyre::eyre::eyre!(e))?;
                if cli.worktree {
                    worker.worktree = Some(brokertui::workspace::WorktreeChoice::Flag(true));
                }
                if !given.insert(worker.name.clone()) {
                    color_eyre::eyre::bail!(
                        "-w {w:?}: the name {:?} is given twice (each worker needs its own name)",
                        worker.name
                    );
                }
                // A -w replaces the config file's worker of that name.
                config.workers.retain(|c| c.name != worker.name);
                config.workers.push(worker);
            }
            if let Some(url) = &cli.connect {
                let url = (!url.is_empty()).then_some(url.as_str());
                let client =
                    client::Client::discover(url, cli.token.as_deref(), cli.state_dir.as_deref())?;
                let remote = brokertui::backend::RemoteBroker::new(client);
                let opts = brokertui::app::RunOptions::default();
                return runtime()?.block_on(brokertui::app::run_remote(
                    remote, &config, &state_dir, opts,
                ));
            }
            if cli.serve {
                if !cli.bind.ip().is_loopback() {
                    if !cli.allow_remote {
                        bail!(
                            "refusing to listen on {} without --allow-remote: anyone who reaches it with the token controls every worker",
                            cli.bind
                        );
                    }
                    eprintln!(
                        "warning: listening on {}, reachable from other machines",
                        cli.bind
                    );
                }
                let opts = brokertui::stack::StackOptions {
                    bind: cli.bind,
                    replay_events: cli.replay_events,
                    journal: true,
                    fresh: cli.fresh,
                };
                serve_runtime()?.block_on(brokertui::serve::run(config, opts, &state_dir))
            } else {
                if config.workers.is_empty() {
                    config.workers.push(config::default_worker());
                }
                runtime()?.block_on(brokertui::app::run(config, &state_dir))
            }
        }
    }
}

fn runtime() -> color_eyre::Result<tokio::runtime::Runtime> {
    // The broker and the TUI answer requests and keys: short scheduler slices (see `sched`).
    brokertui::sched::latency_thread();
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .on_thread_start(brokertui::sched::latency_thread)
        .enable_all()
        .build()?)
}

/// `--serve` runs the broker, the API and every connection on one thread: measured on two
/// cores against the two-thread runtime, 64 connections spread over 16 workers got p99
/// 4.0 → 2.6 ms and 29.8k → 39.4k requests/s (no cross-thread wake-ups between the
/// handlers, the broker task and the worker pipes). The workers are processes of their own
/// and use the other cores; the TUI keeps two threads (it draws on its own).
fn serve_runtime() -> color_eyre::Result<tokio::runtime::Runtime> {
    brokertui::sched::latency_thread();
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Logs go to a file (a TUI owns the terminal) or, for workers, to stderr (the broker
/// points it at the worker's log file). `RUST_LOG` filters.
fn init_logging(file: Option<&std::path::Path>) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_env_filter(filter);
    match file.and_then(|p| brokertui::fsutil::append_private(p).ok()) {
        Some(f) => builder.with_writer(std::sync::Mutex::new(f)).init(),
        None => builder.with_writer(std::io::stderr).init(),
    }
}
