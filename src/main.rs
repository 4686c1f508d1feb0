use clap::{Parser, Subcommand};

use brokertui::worker::{self, WorkerArgs};

#[derive(Parser, Debug)]
#[command(name = "brokertui", version, about = "Run a fleet of interactive programs in PTYs, watch them, drive them, relay messages between them")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Internal: the PTY worker process the broker spawns.
    #[command(hide = true)]
    Worker(WorkerArgs),
}

fn main() -> color_eyre::Result<()> {
    color_eyre::install()?;
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Worker(args)) => {
            tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info".into()),
                )
                .init();
            worker::run(args)
        }
        None => Ok(()),
    }
}
