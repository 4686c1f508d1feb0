//! Output throughput, side by side in one run: a child writes N bytes into a PTY and we
//! time how long until they have gone through
//! (a) a raw PTY reader that discards them — the machine's limit;
//! (b) brokertui headless — bytes delivered to an output subscriber, worker screen parsed;
//! (c) brokertui + the TUI's side — (b) shown as the TUI shows it ([`crate::drawn`]);
//! (d) tmux, detached, running the same child (`tmux wait-for` marks start and end).
//!
//! Every path runs `sh -c 'stty raw -echo; <gate>; exec bench gen KIND N'`: raw mode so the
//! byte count is exact (no `\n` → `\r\n`), and a gate so the clock starts only when the
//! bytes start, not at process start-up.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use brokertui::broker::{BrokerConfig, BrokerHandle, Received, SpawnSpec};
use brokertui::protocol::requests::snapshot::SnapshotFormat;

use crate::stats::median;

const ROWS: u16 = 50;
const COLS: u16 = 200;

pub fn pattern(kind: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(70 * 1024);
    let mut i = 0usize;
    while out.len() < 64 * 1024 {
        match kind {
            "plain" | "lines" => out.extend(format!("line {i:06} the quick brown fox jumps over the lazy dog 0123456789\n").as_bytes()),
            "sgr" => out.extend(
                format!(
                    "\x1b[31m{i:06}\x1b[0m \x1b[1;32mgreen bold\x1b[0m \x1b[38;5;{}m256-colour\x1b[0m \x1b[38;2;{};20;30mtrue colour\x1b[0m \x1b[4munderlined\x1b[24m text\n",
                    i % 216 + 16,
                    i % 256
                )
                .as_bytes(),
            ),
            // A full-screen repaint, the way agent TUIs redraw: home, then every row
            // positioned, cleared, coloured.
            "tui" => {
                out.extend(b"\x1b[?25l\x1b[H");
                for row in 1..=ROWS {
                    out.extend(
                        format!(
                            "\x1b[{row};1H\x1b[2K\x1b[48;5;{}m\x1b[38;5;15m {i:06} │ assistant › thinking about row {row} of the repaint \x1b[0m\x1b[K",
                            (row as usize + i) % 24 + 232
                        )
                        .as_bytes(),
                    );
                }
                out.extend(b"\x1b[?25h");
            }
            other => panic!("unknown kind {other} (plain, lines, sgr, tui)"),
        }
        i += 1;
    }
    out
}

/// `bench gen KIND BYTES`: writes exactly BYTES of KIND output to stdout. `lines` is `plain`
/// written one line per `write`, the way a line-buffered program (a build, a log) writes to
/// a terminal; the others go out in 64 KiB writes.
pub fn generate(kind: &str, bytes: usize) {
    let pat = pattern(kind);
    let mut out = std::io::stdout().lock();
    let mut left = bytes;
    if kind == "lines" {
        // Stdout is line-buffered: each line is its own write.
        for line in pat.split_inclusive(|&b| b == b'\n').cycle() {
            let n = left.min(line.len());
            if n == 0 || out.write_all(&line[..n]).is_err() {
                break;
            }
            left -= n;
        }
        let _ = out.flush();
        return;
    }
    while left > 0 {
        let n = left.min(pat.len());
        if out.write_all(&pat[..n]).is_err() {
            return;
        }
        left -= n;
    }
    let _ = out.flush();
}

fn child_cmd(gate: &str, kind: &str, bytes: usize) -> Vec<String> {
    let bench = std::env::current_exe().expect("exe");
    vec![
        "sh".into(),
        "-c".into(),
        format!(
            "stty raw -echo; {gate}; exec {} gen {kind} {bytes}",
            bench.display()
        ),
    ]
}

/// The same child, staying alive afterwards so its worker can still answer a snapshot.
fn lingering_child_cmd(gate: &str, kind: &str, bytes: usize) -> Vec<String> {
    let mut cmd = child_cmd(gate, kind, bytes);
    cmd[2] = cmd[2].replacen("exec ", "", 1) + "; exec sleep 600";
    cmd
}

fn raw_pty(kind: &str, bytes: usize) -> Duration {
    use portable_pty::{CommandBuilder, PtySize, native_pty_system};
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: ROWS,
            cols: COLS,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("openpty");
    let argv = child_cmd("read x", kind, bytes);
    let mut cmd = CommandBuilder::new(&argv[0]);
    cmd.args(&argv[1..]);
    cmd.cwd(std::env::current_dir().expect("cwd"));
    let mut child = pair.slave.spawn_command(cmd).expect("spawn");
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().expect("reader");
    let mut writer = pair.master.take_writer().expect("writer");
    std::thread::sleep(Duration::from_millis(300));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0usize;
        let mut started = None;
        while total < bytes {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    started.get_or_insert_with(Instant::now);
                    total += n;
                }
            }
        }
        let _ = tx.send(total);
    });
    let t = Instant::now();
    writer.write_all(b"\n").expect("gate");
    let total = rx.recv().expect("reader");
    let elapsed = t.elapsed();
    assert_eq!(total, bytes, "raw reader got {total} of {bytes}");
    let _ = child.wait();
    elapsed
}

/// A broker with one worker "gen" whose child waits at its gate to write `bytes` of `kind`.
async fn start_gen(kind: &str, bytes: usize) -> BrokerHandle {
    let broker = BrokerHandle::start(BrokerConfig::new(crate::brokertui_exe()));
    broker
        .spawn(SpawnSpec {
            name: "gen".into(),
            cmd: lingering_child_cmd("read x", kind, bytes),
            rows: Some(ROWS),
            cols: Some(COLS),
            ..Default::default()
        })
        .await
        .expect("spawn");
    broker
}

async fn through_broker(kind: &str, bytes: usize, tui: bool) -> Duration {
    let broker = start_gen(kind, bytes).await;
    let mut sub = broker.subscribe_output("gen").await.expect("subscribe");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut drawn = crate::drawn::Drawn::new(broker.clone(), "gen", ROWS, COLS);
    drawn.resync().await;
    let base = broker
        .snapshot("gen", SnapshotFormat::Plain, None)
        .await
        .expect("snapshot")
        .offset;
    let mut chunks = 0u64;
    let t = Instant::now();
    broker.input("gen", b"\n".to_vec()).await.expect("gate");
    loop {
        match sub.recv().await {
            Received::Item(chunk) => {
                chunks += 1;
                let end = chunk.offset + chunk.data.len() as u64;
                if tui {
                    drawn.take(chunk).await;
                }
                if end - base >= bytes as u64 {
                    break;
                }
            }
            Received::Lagged(_) => panic!("a subscriber that keeps up never lags"),
            Received::Closed => panic!("output closed early"),
        }
    }
    // "Delivered and the worker's screen up to date": a snapshot answers only once the
    // worker's parser has caught up with every byte it forwarded.
    broker
        .snapshot("gen", SnapshotFormat::Plain, Some(Duration::from_secs(30)))
        .await
        .expect("final snapshot");
    let elapsed = t.elapsed();
    if std::env::var_os("BENCH_VERBOSE").is_some() {
        eprintln!(
            "  ({chunks} chunks, {} KiB on average)",
            bytes as u64 / chunks.max(1) / 1024
        );
    }
    if drawn.resyncs > 1 {
        eprintln!(
            "  (tui path showed {} snapshots instead of parsing floods)",
            drawn.resyncs - 1
        );
    }
    broker.shutdown().await;
    elapsed
}

/// `--serve` with nobody watching: the worker only parses; done when the child has exited
/// and the worker's screen holds every byte.
async fn unwatched(kind: &str, bytes: usize) -> Duration {
    let broker = start_gen(kind, bytes).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let base = broker
        .snapshot("gen", SnapshotFormat::Plain, None)
        .await
        .expect("snapshot")
        .offset;
    let t = Instant::now();
    broker.input("gen", b"\n".to_vec()).await.expect("gate");
    loop {
        let snap = broker
            .snapshot("gen", SnapshotFormat::Plain, Some(Duration::from_secs(30)))
            .await
            .expect("snapshot");
        if snap.offset - base >= bytes as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = t.elapsed();
    broker.shutdown().await;
    elapsed
}

fn tmux(kind: &str, bytes: usize) -> Duration {
    let sock = format!("brokertui-bench-{}", std::process::id());
    let tm = |args: &[&str]| {
        let ok = std::process::Command::new("tmux")
            .arg("-L")
            .arg(&sock)
            .args(args)
            .env_remove("TMUX")
            .status()
            .expect("tmux")
            .success();
        assert!(ok, "tmux {args:?} failed");
    };
    let argv = child_cmd("tmux wait-for go", kind, bytes);
    let inner = format!(
        "{} -c '{}'; tmux wait-for -S done",
        argv[0],
        argv[2].replace('\'', "'\\''")
    );
    tm(&[
        "new-session",
        "-d",
        "-x",
        &COLS.to_string(),
        "-y",
        &ROWS.to_string(),
        &inner,
    ]);
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    tm(&["wait-for", "-S", "go"]);
    tm(&["wait-for", "done"]);
    let elapsed = t.elapsed();
    // The session ends with its command, and the server with it; this is only a safety net.
    let _ = std::process::Command::new("tmux")
        .args(["-L", &sock, "kill-server"])
        .output();
    elapsed
}

/// Busy loops competing for the CPU; killed when dropped.
struct Hogs(Vec<std::process::Child>);

impl Hogs {
    fn start(n: usize) -> Hogs {
        Hogs(
            (0..n)
                .map(|_| {
                    std::process::Command::new("sh")
                        .args(["-c", "while :; do :; done"])
                        .spawn()
                        .expect("spawn a busy loop")
                })
                .collect(),
        )
    }
}

impl Drop for Hogs {
    fn drop(&mut self) {
        for hog in &mut self.0 {
            let _ = hog.kill();
            let _ = hog.wait();
        }
    }
}

pub async fn run(mib: usize, reps: usize, kinds: &str, paths: &str, hogs: usize) {
    let want = |p: &str| paths == "all" || paths.split(',').any(|x| x == p);
    let bytes = mib * 1024 * 1024;
    let have_tmux = std::process::Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok();
    let busy = if hogs > 0 {
        format!(", with {hogs} busy loops taking the CPU meanwhile")
    } else {
        String::new()
    };
    println!(
        "\n### Output throughput: {mib} MiB per run, {reps} alternating runs{busy}, medians (MiB/s)\n"
    );
    let _hogs = Hogs::start(hogs);
    println!(
        "| kind | (a) raw PTY | (u) unwatched | (b) headless, watched | (c) shown as the TUI does | (d) tmux | u/a | b/a | c/a | b/d | c/d |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for kind in kinds.split(',') {
        let mut rates: [Vec<f64>; 5] = Default::default();
        let rate = |d: Duration| mib as f64 / d.as_secs_f64();
        for rep in 0..reps {
            if want("raw") {
                rates[0].push(rate(
                    tokio::task::spawn_blocking({
                        let k = kind.to_string();
                        move || raw_pty(&k, bytes)
                    })
                    .await
                    .expect("raw"),
                ));
            }
            if want("unwatched") {
                rates[1].push(rate(unwatched(kind, bytes).await));
            }
            if want("headless") {
                rates[2].push(rate(through_broker(kind, bytes, false).await));
            }
            if want("tui") {
                rates[3].push(rate(through_broker(kind, bytes, true).await));
            }
            if have_tmux && want("tmux") {
                rates[4].push(rate(
                    tokio::task::spawn_blocking({
                        let k = kind.to_string();
                        move || tmux(&k, bytes)
                    })
                    .await
                    .expect("tmux"),
                ));
            }
            let last = |i: usize| {
                rates[i]
                    .get(rep)
                    .map(|r| format!("{r:.0}"))
                    .unwrap_or("-".into())
            };
            eprintln!(
                "  {kind} run {}: raw {}, unwatched {}, headless {}, tui {}, tmux {} MiB/s",
                rep + 1,
                last(0),
                last(1),
                last(2),
                last(3),
                last(4)
            );
        }
        let m: Vec<f64> = rates
            .iter()
            .map(|r| {
                if r.is_empty() {
                    f64::NAN
                } else {
                    median(r.clone())
                }
            })
            .collect();
        println!(
            "| {kind} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            m[0],
            m[1],
            m[2],
            m[3],
            m[4],
            m[1] / m[0],
            m[2] / m[0],
            m[3] / m[0],
            m[2] / m[4],
            m[3] / m[4]
        );
    }
}
