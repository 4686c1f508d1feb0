//! Scheduler hints for the threads that answer people, all unprivileged and per thread.
//!
//! - [`throughput_thread`] (`SCHED_BATCH`): the PTY reader and the vt100 parser — full CPU
//!   share, but they never preempt anyone when they wake.
//! - [`latency_thread`] (a short EEVDF slice): threads that answer requests and keys — the
//!   worker's main loop, the broker's and the TUI's runtime threads — run soon after they
//!   wake.
//!
//! A flood is kept from crowding everyone else by flow control, not by priorities: a worker
//! forwards no faster than its watchers take output (`broker::feed`).

/// Marks the calling thread `SCHED_BATCH` (best effort: on failure it stays as it was).
pub fn throughput_thread() {
    set_policy(libc::SCHED_BATCH)
}

/// Sets the calling thread's scheduling policy (best effort: on failure it stays as it was).
fn set_policy(policy: i32) {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `sched_setscheduler` on the calling thread (pid 0) with a valid, initialised
    // `sched_param`; it touches no memory of ours after returning.
    let rc = unsafe { libc::sched_setscheduler(0, policy, &param) };
    if rc != 0 {
        tracing::debug!(
            "scheduling policy {policy} unavailable: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Slice asked for by request-serving threads: the kernel's minimum (0.1 ms).
const LATENCY_SLICE_NS: u64 = 100_000;

/// Asks for a short scheduler slice for the calling thread, which serves requests (the
/// worker's main loop, the broker's runtime threads). Under EEVDF (Linux ≥ 6.12) a shorter
/// slice means an earlier deadline when the thread wakes, so it runs ahead of threads that
/// have been running flat out; it does not get a larger share of the CPU. Unprivileged;
/// on older kernels the value is ignored or the call fails, and nothing changes.
///
/// `SCHED_FLAG_RESET_ON_FORK`: processes forked from this thread (workers, the agents in
/// their PTYs) start with the default slice, never ours.
pub fn latency_thread() {
    // Only for the default policy: a user's `chrt -b`, or a privileged real-time policy,
    // stays as it is.
    // SAFETY: `sched_getscheduler(0)` asks about the calling thread; no memory involved.
    if unsafe { libc::sched_getscheduler(0) } != libc::SCHED_OTHER {
        return;
    }
    // SAFETY: `getpriority` for the calling thread reads no memory of ours.
    let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    let attr = libc::sched_attr {
        size: std::mem::size_of::<libc::sched_attr>() as u32,
        sched_policy: libc::SCHED_OTHER as u32,
        sched_flags: libc::SCHED_FLAG_RESET_ON_FORK as u64,
        // Keep the thread's niceness (lowering it would need privileges and fail).
        sched_nice: nice,
        sched_priority: 0,
        sched_runtime: LATENCY_SLICE_NS,
        sched_deadline: 0,
        sched_period: 0,
    };
    // SAFETY: `sched_setattr(0, &attr, 0)` on the calling thread; `attr` is a valid,
    // initialised `struct sched_attr` whose `size` field is its own size, and the kernel
    // only reads it during the call.
    let rc = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const _, 0) };
    if rc != 0 {
        tracing::debug!(
            "short scheduler slice unavailable: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// The front process's claim to run ahead of the programs in its panes (config `priority`).
///
/// Under load the broker and the TUI compete with every pane's program for the CPU. Where the
/// kernel shares it per session first (autogroup), and every program in a pane leads a
/// session of its own, twenty floods leave the session that answers requests and keys one
/// share in twenty-odd however little it asks for, and it waits its turn at every wake-up.
/// Weight is the only thing that changes that: a negative nice for the front process — its
/// threads, and its session's autogroup where there is one — so it outranks what it brokers.
///
/// Raising priority needs `CAP_SYS_NICE` or an `RLIMIT_NICE` that allows it (`ulimit -e`,
/// limits.conf), as for an audio server; without either, nothing changes and
/// [`raise_front`] says why. Workers never inherit it: threads forked from request-serving
/// threads start at nice 0 (`SCHED_FLAG_RESET_ON_FORK`), the worker's spawn resets it
/// ([`reset_for_child`]), and a new session starts a new autogroup at nice 0. Dropping this
/// puts the session's autogroup back as it was (the user's shell lives in that session).
#[derive(Debug)]
pub struct FrontPriority {
    pub nice: i32,
    /// The session's autogroup nice before, when it was raised too.
    autogroup_was: Option<i32>,
}

/// Why the front process could not raise its priority.
#[derive(Debug, thiserror::Error)]
pub enum PriorityError {
    #[error(
        "nice {nice} not granted: {source}; it needs CAP_SYS_NICE or an RLIMIT_NICE that allows it (limits.conf: `<user> - nice {nice}`); running at normal priority"
    )]
    Denied { nice: i32, source: std::io::Error },
}

/// The nice [`raise_front`] granted, for threads started later (0: none).
static FRONT_NICE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// For a thread that serves people, started after [`raise_front`] (threads forked from
/// request-serving threads start at nice 0): takes the front process's rank, if it has one.
pub fn front_thread() {
    let nice = FRONT_NICE.load(std::sync::atomic::Ordering::Relaxed);
    if nice != 0 {
        // SAFETY: `setpriority` on the calling thread; it touches no memory of ours.
        unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
    }
}

/// Raises every thread of this process, and its session's autogroup if there is one, to
/// `nice` (-20..=0).
pub fn raise_front(nice: i32) -> Result<FrontPriority, PriorityError> {
    let tids: Vec<libc::id_t> = std::fs::read_dir("/proc/self/task")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    for tid in &tids {
        // SAFETY: `setpriority` on one of our own threads; it touches no memory of ours.
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, *tid, nice) };
        if rc != 0 {
            let source = std::io::Error::last_os_error();
            // A thread that ended meanwhile is no reason to give up; a refusal is (it is the
            // same for every thread: the privilege is the process's).
            if source.raw_os_error() != Some(libc::ESRCH) {
                return Err(PriorityError::Denied { nice, source });
            }
        }
    }
    let autogroup_was = match autogroup_nice(None) {
        Some(was) => match set_autogroup_nice(nice) {
            Ok(()) => Some(was),
            Err(e) => {
                tracing::warn!("session autogroup not raised to nice {nice}: {e}");
                None
            }
        },
        None => None,
    };
    FRONT_NICE.store(nice, std::sync::atomic::Ordering::Relaxed);
    Ok(FrontPriority {
        nice,
        autogroup_was,
    })
}

impl Drop for FrontPriority {
    fn drop(&mut self) {
        FRONT_NICE.store(0, std::sync::atomic::Ordering::Relaxed);
        if let Some(was) = self.autogroup_was
            && let Err(e) = set_autogroup_nice(was)
        {
            tracing::warn!("session autogroup not put back to nice {was}: {e}");
        }
    }
}

/// For a freshly forked child before it execs (async-signal-safe): back to nice 0, whatever
/// the thread that forked it had.
pub fn reset_for_child() -> std::io::Result<()> {
    // SAFETY: `setpriority` on the calling (single-threaded, just forked) process; a plain
    // system call, no allocation or locking.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The nice of the autogroup of `pid`'s session (this process's if `None`):
/// `/proc/<pid>/autogroup` reads `/autogroup-N nice X`. `None` where the kernel has no
/// autogroups.
pub fn autogroup_nice(pid: Option<u32>) -> Option<i32> {
    let pid = pid.map_or("self".to_string(), |p| p.to_string());
    let text = std::fs::read_to_string(format!("/proc/{pid}/autogroup")).ok()?;
    text.split_whitespace().last()?.parse().ok()
}

/// Unprivileged writers share one slot per tenth of a second machine-wide (`EAGAIN`
/// otherwise): a few tries, a tenth apart.
fn set_autogroup_nice(nice: i32) -> std::io::Result<()> {
    let mut tries = 0;
    loop {
        match std::fs::write("/proc/self/autogroup", nice.to_string()) {
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && tries < 5 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(110));
            }
            other => return other,
        }
    }
}
