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
