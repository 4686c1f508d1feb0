//! Reading the child's output, and stepping aside while it floods.
//!
//! Output is read by a thread of ordinary priority, so an echoed key or an agent's next line
//! is picked up the moment it is there. When the child floods — for 100 ms, every read found
//! more output already waiting: the child writes faster than we get to read — reading passes
//! to a twin thread under `SCHED_IDLE`. The twin reads just as fast while the machine has CPU
//! to spare (a lone flood is not slowed, BENCHMARKS.md) but yields to everything else when it
//! has not, and the child then blocks on a full PTY as on a slow terminal. Without this,
//! twenty `yes` floods on two cores starved the broker and every quiet worker (the broker got
//! ~6% of the CPU, fair-shared among ~80 busy threads) and a request to a quiet worker took
//! 60 ms at p99. Once the twin has drained the PTY and nothing more comes for 50 ms,
//! reading passes back: a child that goes on printing a little (a spinner after a flood,
//! ~10 frames a second) does not stay on the idle thread, while a flood that merely paused
//! for the child to be scheduled does (20 ms measured worse: 20 floods' p99 up to 21 ms).
//!
//! Judging by "output was waiting" rather than by rate matters: under contention each flood
//! gets only a few MiB/s, and no rate threshold would tell it from an agent's busy UI.
//! And the reader steps aside only when it is starved for CPU — it waited on the run queue
//! over [`STARVED_RATIO`] times as long as it ran — so a lone flood on a machine that can
//! keep up stays on the ordinary thread at full speed (measured: a lone flood's reader
//! waits ~1.4x its run time, one of twenty floods' ~50x; handing over anyway cost a lone
//! flood 5–10 % of its throughput).
//!
//! Stepping aside can be futile: when the CPU goes to work that never leaves any — a build
//! in another window — an idle-priority reader barely runs (it waited ~400x its run time
//! under two busy loops), and a lone flood took 25–70 s instead of 5 (tmux: 4.5 s) while no
//! thread of ours gained. So the twin judges itself every [`TWIN_WINDOW`]: past
//! [`FUTILE_RATIO`], unless the broker's own floods crowd the CPU (as many flooding workers
//! as CPUs, [`flood_peers`](super::flood_peers) — twenty floods' twins wait ~300x too, and
//! there stepping aside is the point), it hands reading back and floods stay on the ordinary
//! reader for [`HOLD_OFF`]. While the TUI parses a flood its twin waits ~20x: it stays.
//!
//! Two threads, because an unprivileged thread may enter `SCHED_IDLE` but never leave it.
//! They pass a baton: only the holder reads, so bytes stay in order.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsFd;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::flood_peers::{Marker, Peers};

/// Bytes read from the PTY per read call.
const READ_CHUNK: usize = 64 * 1024;
/// How long output must keep waiting at every read before it counts as a flood.
const FLOOD_AFTER: Duration = Duration::from_millis(100);
/// Run-queue wait per unit of run time beyond which the reader counts as starved.
const STARVED_RATIO: u64 = 4;
/// Silence, once drained, that ends a flood.
const QUIET: Duration = Duration::from_millis(50);
/// How often the twin judges whether stepping aside is futile.
const TWIN_WINDOW: Duration = Duration::from_millis(250);
/// Run-queue wait per unit of run time beyond which the twin barely runs at all: the CPU is
/// taken by work that never leaves it any (measured: ~400 under two busy loops; ~20 while
/// the TUI parses the flood, ~300 among twenty floods, which `Peers::crowded` tells apart).
const FUTILE_RATIO: u64 = 100;
/// How long floods stay on the ordinary reader once stepping aside proved futile (unless the
/// broker's floods come to crowd the CPU meanwhile).
const HOLD_OFF: Duration = Duration::from_secs(30);
/// Test hook: when set, any output found waiting at a read passes reading to the twin at once,
/// starved or not. Whether a flood lasts 100 ms and starves its reader depends on how busy the
/// machine is, so a test of the hand-off itself cannot rely on it; those judgements are
/// tested on their own ([`Backlog::flooding`], [`starved`]).
const EAGER_ENV: &str = "BROKERTUI_TEST_EAGER_FLOOD";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    Normal,
    Flood,
    Ended,
}

#[derive(Default)]
struct Baton {
    turn: Mutex<Option<Turn>>,
    changed: Condvar,
    /// Until when floods stay on the ordinary reader (the twin found stepping aside futile).
    held_until: Mutex<Option<Instant>>,
}

impl Baton {
    fn hold_off(&self, until: Instant) {
        *self.held_until.lock().expect("baton") = Some(until);
    }

    fn held_off(&self, now: Instant) -> bool {
        self.held_until
            .lock()
            .expect("baton")
            .is_some_and(|until| now < until)
    }

    fn pass(&self, to: Turn) {
        *self.turn.lock().expect("baton") = Some(to);
        self.changed.notify_all();
    }

    /// Waits until the turn is neither `None` (not started) nor `not`; returns it.
    fn wait_while(&self, not: Turn) -> Turn {
        let guard = self.turn.lock().expect("baton");
        let guard = self
            .changed
            .wait_while(guard, |t| t.is_none_or(|t| t == not))
            .expect("baton");
        guard.unwrap_or(Turn::Ended)
    }
}

/// Whether output has kept waiting at every read for `after` ([`FLOOD_AFTER`]).
struct Backlog {
    after: Duration,
    since: Option<Instant>,
}

impl Backlog {
    fn new(after: Duration) -> Backlog {
        Backlog { after, since: None }
    }

    /// Records whether output was already waiting before a read; whether that makes a flood.
    fn flooding(&mut self, waiting: bool, now: Instant) -> bool {
        if !waiting {
            self.since = None;
            return false;
        }
        now.duration_since(*self.since.get_or_insert(now)) >= self.after
    }
}

/// Nanoseconds the calling thread has run and has waited for a CPU (`schedstat`).
fn sched_times() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let mut fields = stat.split_whitespace().map(|f| f.parse::<u64>().ok());
    Some((fields.next()??, fields.next()??))
}

/// Whether a thread that went from `before` to `after` (run, wait) waited for a CPU more
/// than `ratio` times as long as it ran; `None` without schedstat (absent, or all zeros when
/// the kernel keeps no scheduler statistics).
fn waited_over(before: Option<(u64, u64)>, after: Option<(u64, u64)>, ratio: u64) -> Option<bool> {
    match (before, after) {
        (Some((run0, wait0)), Some((run1, wait1))) if run1 > run0 => {
            Some(wait1.saturating_sub(wait0) > ratio * (run1 - run0))
        }
        _ => None,
    }
}

/// Whether the ordinary reader was starved for CPU. Without schedstat: yes, stepping aside
/// is the safe side.
fn starved(before: Option<(u64, u64)>, after: Option<(u64, u64)>) -> bool {
    waited_over(before, after, STARVED_RATIO).unwrap_or(true)
}

/// Whether the twin barely ran while others took the CPU ([`FUTILE_RATIO`]). Without
/// schedstat: no, the twin keeps reading as it would have.
fn futile(before: Option<(u64, u64)>, after: Option<(u64, u64)>) -> bool {
    waited_over(before, after, FUTILE_RATIO).unwrap_or(false)
}

/// Reads one chunk (retrying when a signal interrupts) and hands it on; `false` once the PTY
/// is closed or nobody takes the output any more. Both readers use it, so they stop alike.
fn forward_chunk(file: &mut File, buf: &mut [u8], out: &mpsc::Sender<Vec<u8>>) -> bool {
    let n = loop {
        match file.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Ok(0) | Err(_) => return false,
            Ok(n) => break n,
        }
    };
    out.blocking_send(buf[..n].to_vec()).is_ok()
}

/// Whether `fd` has output to read, waiting at most `timeout`.
fn readable(fd: &File, timeout: nix::poll::PollTimeout) -> bool {
    use nix::poll::{PollFd, PollFlags, poll};
    loop {
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Err(nix::errno::Errno::EINTR) => continue,
            // Hang-up and errors count as readable: the read then reports them.
            Ok(n) => return n > 0,
            Err(_) => return true,
        }
    }
}

/// Who is reading, for the worker's main loop.
#[derive(Clone)]
pub struct Readers {
    baton: Arc<Baton>,
}

impl Readers {
    /// Whether the `SCHED_IDLE` twin holds the baton (a starved flood is being read).
    pub fn flooding(&self) -> bool {
        *self.baton.turn.lock().expect("baton") == Some(Turn::Flood)
    }
}

/// Starts reading: `reader` on an ordinary thread, `twin` (the same PTY, another fd) on the
/// `SCHED_IDLE` one. Chunks go to `out`; it closes when the PTY does. With a `marker` (the
/// broker's [`flood_peers`](super::flood_peers)) the twin hands back when stepping aside is
/// futile and the broker's floods do not crowd the CPU; without one it never judges that.
pub fn spawn(
    mut reader: File,
    twin: File,
    out: mpsc::Sender<Vec<u8>>,
    mut marker: Option<Marker>,
) -> std::io::Result<Readers> {
    let baton = Arc::new(Baton::default());
    baton.pass(Turn::Normal);
    {
        let (baton, out) = (baton.clone(), out.clone());
        let peers = marker.as_ref().map(|m| m.peers().clone());
        std::thread::Builder::new()
            .name("pty-flood".into())
            .spawn(move || read_floods(twin, &baton, &out, peers))?;
    }
    let readers = Readers {
        baton: baton.clone(),
    };
    let eager = std::env::var_os(EAGER_ENV).is_some();
    let flood_after = if eager { Duration::ZERO } else { FLOOD_AFTER };
    let spawned = std::thread::Builder::new()
        .name("pty-reader".into())
        .spawn(move || {
            let mut buf = vec![0u8; READ_CHUNK];
            let mut backlog = Backlog::new(flood_after);
            let mut times = None;
            loop {
                let waiting = readable(&reader, nix::poll::PollTimeout::ZERO);
                if !waiting && let Some(m) = marker.as_mut() {
                    m.calm();
                }
                if waiting && backlog.since.is_none() {
                    // A window of waiting output starts: judge starvation over it alone.
                    times = sched_times();
                }
                if backlog.flooding(waiting, Instant::now()) {
                    backlog.since = None;
                    if let Some(m) = marker.as_mut() {
                        m.flooding();
                    }
                    // Held off after a futile try, unless the broker's floods crowd the CPU now.
                    let held = baton.held_off(Instant::now())
                        && !marker.as_ref().is_some_and(|m| m.peers().crowded());
                    if eager || (!held && starved(times, sched_times())) {
                        baton.pass(Turn::Flood);
                        if baton.wait_while(Turn::Flood) == Turn::Ended {
                            return;
                        }
                        continue;
                    }
                }
                if !forward_chunk(&mut reader, &mut buf, &out) {
                    break;
                }
            }
            baton.pass(Turn::Ended);
        });
    if let Err(e) = spawned {
        // The twin would wait for the baton forever, holding the output channel open.
        readers.baton.pass(Turn::Ended);
        return Err(e);
    }
    Ok(readers)
}

/// The `SCHED_IDLE` twin: reads while the child floods, until the PTY stays drained — or,
/// with `peers`, until stepping aside proves futile: the twin barely runs because the CPU
/// is taken by work that is not the broker's floods (those are `crowded`).
fn read_floods(mut twin: File, baton: &Baton, out: &mpsc::Sender<Vec<u8>>, peers: Option<Peers>) {
    crate::sched::idle_thread();
    let mut buf = vec![0u8; READ_CHUNK];
    let quiet = nix::poll::PollTimeout::try_from(QUIET).unwrap_or(nix::poll::PollTimeout::NONE);
    loop {
        if baton.wait_while(Turn::Normal) == Turn::Ended {
            return;
        }
        let mut window = (Instant::now(), sched_times());
        let next = loop {
            if !readable(&twin, quiet) {
                break Turn::Normal;
            }
            if !forward_chunk(&mut twin, &mut buf, out) {
                break Turn::Ended;
            }
            if let Some(peers) = &peers
                && window.0.elapsed() >= TWIN_WINDOW
            {
                let times = sched_times();
                if futile(window.1, times) && !peers.crowded() {
                    baton.hold_off(Instant::now() + HOLD_OFF);
                    break Turn::Normal;
                }
                window = (Instant::now(), times);
            }
        };
        baton.pass(next);
        if next == Turn::Ended {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_output_waiting_at_every_read_for_100ms() {
        let t0 = Instant::now();
        let mut b = Backlog::new(FLOOD_AFTER);
        assert!(!b.flooding(true, t0));
        assert!(!b.flooding(true, t0 + FLOOD_AFTER / 2));
        assert!(b.flooding(true, t0 + FLOOD_AFTER));
        // One read that had to wait starts the count over.
        assert!(!b.flooding(false, t0 + FLOOD_AFTER));
        assert!(!b.flooding(true, t0 + FLOOD_AFTER * 3 / 2));
        assert!(b.flooding(true, t0 + FLOOD_AFTER * 5 / 2));
    }

    #[test]
    fn starved_means_waiting_far_longer_than_running() {
        let ms = |run: u64, wait: u64| Some((run * 1_000_000, wait * 1_000_000));
        // A lone flood on an idle machine: waits about as long as it runs.
        assert!(!starved(ms(0, 0), ms(337, 465)));
        // One of twenty floods on two cores.
        assert!(starved(ms(0, 0), ms(10, 510)));
        assert!(starved(None, ms(1, 1)), "no schedstat: step aside");
        // The twin under two busy loops, ~400; while the TUI parses the flood, ~20.
        assert!(futile(ms(0, 0), ms(1, 400)));
        assert!(!futile(ms(0, 0), ms(80, 1_600)));
        assert!(!futile(None, ms(1, 400)), "no schedstat: keep reading");
        assert!(
            starved(ms(0, 0), ms(0, 0)),
            "schedstat all zeros: step aside"
        );
        assert!(
            sched_times().is_some(),
            "Linux exposes /proc/thread-self/schedstat"
        );
    }
}
