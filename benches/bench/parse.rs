//! The worker's parser alone, in this process: the same streams as `throughput` fed to a
//! 200x50 vt100 screen with the worker's 2000 rows of history, on the patched paths and on
//! upstream's (`set_upstream_paths`, the differential test's switch), alternating run by run.
//! CPU-bound and free of PTYs and scheduling hand-offs, so it shows what a parser change
//! buys more steadily than the end-to-end throughput does.

use std::time::Instant;

use crate::stats::median;

/// The worker's history (`src/worker/screen.rs`).
const HISTORY: usize = 2000;

fn rate(bytes: &[u8], mib: usize, upstream: bool) -> f64 {
    let mut p = vt100::Parser::new(50, 200, HISTORY);
    p.screen_mut().set_upstream_paths(upstream);
    let total = mib << 20;
    let t = Instant::now();
    let mut done = 0;
    while done < total {
        p.process(bytes);
        done += bytes.len();
    }
    std::hint::black_box(p.screen().cursor_position());
    done as f64 / (1 << 20) as f64 / t.elapsed().as_secs_f64()
}

pub fn run(mib: usize, reps: usize, kinds: &str) {
    println!(
        "\n### The parser alone: {mib} MiB per run, {reps} alternating runs, medians (ranges), MiB/s\n"
    );
    println!("| kind | patched | upstream's paths | patched / upstream |");
    println!("|---|---|---|---|");
    for kind in kinds.split(',') {
        let bytes = crate::throughput::pattern(kind);
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..reps {
            ours.push(rate(&bytes, mib, false));
            theirs.push(rate(&bytes, mib, true));
        }
        let range = |v: &[f64]| {
            let (lo, hi) = v
                .iter()
                .fold((f64::MAX, 0f64), |(l, h), x| (l.min(*x), h.max(*x)));
            format!("{lo:.0}–{hi:.0}")
        };
        let (o, t) = (median(ours.clone()), median(theirs.clone()));
        println!(
            "| {kind} | {o:.0} ({}) | {t:.0} ({}) | {:.2} |",
            range(&ours),
            range(&theirs),
            o / t
        );
    }
}
