//! `bench`: brokertui's benchmark harness (see BENCHMARKS.md).
//!
//! ```text
//! cargo bench --bench bench -- all
//! cargo bench --bench bench -- throughput --mib 256 --reps 5
//! ```
//!
//! Every comparison runs its contenders in one process run, alternating A, B, A, B…, and
//! reports medians and ratios: these machines are noisy, single times mean little.

mod drawn;
mod echo;
mod parse;
mod requests;
mod scale;
mod stats;
mod throughput;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    about = "brokertui benchmarks: throughput vs raw PTY and tmux, request latency, echo, render, scale"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Output throughput: raw PTY reader vs brokertui headless vs brokertui + TUI parsing vs tmux.
    Throughput {
        #[arg(long, default_value_t = 64)]
        mib: usize,
        #[arg(long, default_value_t = 3)]
        reps: usize,
        /// plain, lines (plain, one write per line), sgr, tui (comma-separated)
        #[arg(long, default_value = "plain,sgr,tui")]
        kinds: String,
        /// raw, unwatched, headless, tui, tmux (comma-separated) or all
        #[arg(long, default_value = "all")]
        paths: String,
        /// Busy loops kept running meanwhile: the CPU taken by other work (a build).
        #[arg(long, default_value_t = 0)]
        hogs: usize,
    },
    /// The worker's parser alone: patched vs upstream's paths, in this process.
    Parse {
        #[arg(long, default_value_t = 256)]
        mib: usize,
        #[arg(long, default_value_t = 5)]
        reps: usize,
        /// plain, sgr, tui (comma-separated)
        #[arg(long, default_value = "plain,sgr,tui")]
        kinds: String,
    },
    /// Request latency through request_worker, in-process and over HTTP.
    Requests {
        #[arg(long, default_value_t = 16)]
        workers: usize,
        #[arg(long, default_value_t = 200)]
        per_caller: usize,
    },
    /// How late Timeout fires for a SIGSTOPped worker with a 200 ms deadline.
    Timeout {
        #[arg(long, default_value_t = 100)]
        n: usize,
    },
    /// Keystroke to echoed byte at a subscriber, and to a redrawn pane.
    Echo {
        #[arg(long, default_value_t = 1000)]
        n: usize,
    },
    /// Drawing 1, 4 and 16 busy 200x50 panes.
    Render {
        #[arg(long, default_value_t = 200)]
        frames: usize,
    },
    /// 200 workers: spawn time, memory, idle CPU, request latency while 20 flood.
    Scale {
        #[arg(long, default_value_t = 200)]
        workers: usize,
        #[arg(long, default_value_t = 20)]
        flooding: usize,
        #[arg(long, default_value_t = 10)]
        idle_secs: u64,
        /// Sequential get_mode calls per caller (64 callers), idle and while flooding.
        #[arg(long, default_value_t = 300)]
        per_caller: usize,
        /// Measure the floods again with this process raised to this nice, as config
        /// `priority` raises the broker and the TUI (needs CAP_SYS_NICE or RLIMIT_NICE).
        #[arg(long, allow_hyphen_values = true)]
        priority: Option<i32>,
    },
    /// Everything with default sizes.
    All,
    /// Internal: write N bytes of a kind of output to stdout (the benchmark's child).
    #[command(hide = true)]
    Gen { kind: String, bytes: usize },
}

/// The `brokertui` binary cargo built for this bench (the real worker binary).
pub fn brokertui_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_brokertui"))
}

fn main() {
    // `cargo bench` passes `--bench` to every bench binary.
    let cli = Cli::parse_from(std::env::args().filter(|a| a != "--bench"));
    if let Scenario::Gen { kind, bytes } = &cli.scenario {
        throughput::generate(kind, *bytes);
        return;
    }
    // BENCH_RUNTIME=current runs everything on one thread (no cross-thread wake-ups).
    let rt = match std::env::var("BENCH_RUNTIME").as_deref() {
        Ok("current") => tokio::runtime::Builder::new_current_thread(),
        _ => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(2);
            b
        }
    }
    // As in `brokertui` itself: the broker's threads ask for short scheduler slices.
    .on_thread_start(brokertui::sched::latency_thread)
    .enable_all()
    .build()
    .expect("runtime");
    brokertui::sched::latency_thread();
    rt.block_on(async {
        println!("# brokertui bench — {} cores, {}", num_cpus(), uname());
        match cli.scenario {
            Scenario::Throughput {
                mib,
                reps,
                kinds,
                paths,
                hogs,
            } => throughput::run(mib, reps, &kinds, &paths, hogs).await,
            Scenario::Parse { mib, reps, kinds } => parse::run(mib, reps, &kinds),
            Scenario::Requests {
                workers,
                per_caller,
            } => requests::run(workers, per_caller).await,
            Scenario::Timeout { n } => requests::timeouts(n).await,
            Scenario::Echo { n } => echo::run(n).await,
            Scenario::Render { frames } => echo::render(frames),
            Scenario::Scale {
                workers,
                flooding,
                idle_secs,
                per_caller,
                priority,
            } => scale::run(workers, flooding, idle_secs, per_caller, priority).await,
            Scenario::All => {
                requests::run(16, 200).await;
                requests::timeouts(100).await;
                echo::run(1000).await;
                echo::render(200);
                throughput::run(128, 5, "plain,sgr,tui", "all", 0).await;
                throughput::run(64, 5, "plain,lines", "all", 2).await;
                parse::run(256, 5, "plain,sgr,tui");
                scale::run(200, 20, 10, 300, None).await;
            }
            Scenario::Gen { .. } => unreachable!(),
        }
    });
}

fn num_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn uname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| format!("Linux {}", s.trim()))
        .unwrap_or_default()
}
