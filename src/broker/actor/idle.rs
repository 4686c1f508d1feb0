//! The idle sweep: a worker with an idle timeout that has been idle that long with nobody
//! attached is released (its worktree kept), after a warning that any activity cancels.
//!
//! Idle means: nobody subscribed to its output, nothing typed or delivered to it, and its
//! agent neither working nor blocked — and either its agent says `idle` or its screen did
//! not move. The broker does not see an unwatched worker's output, so each look asks the
//! worker for its screen's offset (one request at each deadline, none in between).

use super::*;
use crate::protocol::AgentState;

/// How often a warned worker is looked at, so activity cancels the release promptly.
const LOOK_WHILE_WARNED: Duration = Duration::from_secs(1);

pub(super) struct IdleWatch {
    timeout: Duration,
    /// Since when nothing happened.
    quiet_since: std::time::Instant,
    /// Its screen's output offset at the last look.
    offset: Option<u64>,
    /// Typed into or delivered to since the last look.
    touched: bool,
    warned: bool,
}

impl Broker {
    /// Starts watching a new worker, if it (or the broker) has an idle timeout.
    pub(super) fn watch_idle(&mut self, id: WorkerId) {
        let warning = self.config.idle_warning;
        let Some(w) = self.workers.get_mut(&id) else {
            return;
        };
        let timeout = w
            .spec
            .idle_timeout_ms
            .map(Duration::from_millis)
            .or(self.config.idle_timeout)
            .filter(|t| !t.is_zero());
        let Some(timeout) = timeout else {
            return;
        };
        w.idle = Some(IdleWatch {
            timeout,
            quiet_since: std::time::Instant::now(),
            offset: None,
            touched: false,
            warned: false,
        });
        self.schedule(
            timeout.saturating_sub(warning).max(LOOK_WHILE_WARNED),
            Internal::IdleDue(id),
        );
    }

    /// Something was typed into or delivered to worker `name`.
    pub(super) fn touch(&mut self, name: &str) {
        if let Some(watch) = self
            .names
            .get(name)
            .and_then(|id| self.workers.get_mut(id))
            .and_then(|w| w.idle.as_mut())
        {
            watch.touched = true;
        }
    }

    /// A watched worker's deadline: ask for its screen to see whether it moved.
    pub(super) fn idle_due(&mut self, id: WorkerId) {
        let live = self
            .workers
            .get(&id)
            .is_some_and(|w| w.idle.is_some() && w.state == WorkerState::Running);
        if live {
            let payload = serde_json::json!({ "format": "plain" });
            let waiter = Waiter::Broker(FollowUp::IdleCheck(id));
            self.start_request(id, RequestKind::Snapshot, payload, None, waiter);
        } else if self
            .workers
            .get(&id)
            .is_some_and(|w| w.state == WorkerState::Starting)
        {
            self.schedule(LOOK_WHILE_WARNED, Internal::IdleDue(id));
        }
    }

    /// What the look found: activity starts the count again (and cancels a warning); a
    /// worker quiet long enough is warned, then released.
    pub(super) fn idle_checked(&mut self, id: WorkerId, result: RequestResult) {
        let warning = self.config.idle_warning;
        let Some(w) = self.workers.get_mut(&id) else {
            return;
        };
        if w.state != WorkerState::Running {
            return;
        }
        let watched = w.output.shared().watched();
        let agent = w.agent.state;
        let name = w.name.clone();
        let Some(watch) = w.idle.as_mut() else {
            return;
        };
        let offset = result
            .ok()
            .and_then(|v| v.get("offset").and_then(Value::as_u64));
        let moved = offset.is_some() && watch.offset.is_some() && offset != watch.offset;
        watch.offset = offset.or(watch.offset);
        let active = std::mem::take(&mut watch.touched)
            || watched
            || matches!(agent, AgentState::Working | AgentState::Blocked)
            || (moved && agent != AgentState::Idle);
        let now = std::time::Instant::now();
        let timeout = watch.timeout;
        if active {
            let was_warned = std::mem::take(&mut watch.warned);
            watch.quiet_since = now;
            self.schedule(
                timeout.saturating_sub(warning).max(LOOK_WHILE_WARNED),
                Internal::IdleDue(id),
            );
            if was_warned {
                self.alert(
                    Severity::Info,
                    Some(&name),
                    "idle_sweep",
                    "idle_release_cancelled",
                    format!("{name} is active again: it stays"),
                );
            }
            return;
        }
        let quiet = now.duration_since(watch.quiet_since);
        if quiet >= timeout {
            self.alert(
                Severity::Info,
                Some(&name),
                "idle_sweep",
                "idle_released",
                format!(
                    "{name} was released after {} idle with nobody attached{}",
                    human(timeout),
                    if self.workers[&id].worktree.is_some() {
                        "; its worktree is kept"
                    } else {
                        ""
                    }
                ),
            );
            self.save_worker(&name, false);
            let (reply, _) = oneshot::channel();
            return self.release(&name, reply);
        }
        let left = timeout - quiet;
        if left <= warning && !watch.warned {
            watch.warned = true;
            self.alert(
                Severity::Warning,
                Some(&name),
                "idle_sweep",
                "idle_release_soon",
                format!(
                    "{name} has been idle with nobody attached: it will be released in {} unless something happens in it",
                    human(left)
                ),
            );
        }
        let next = if left <= warning {
            left.min(LOOK_WHILE_WARNED)
        } else {
            left - warning
        };
        self.schedule(next, Internal::IdleDue(id));
    }
}

/// `90 s`, `2 min`, `1.5 h`: for alerts.
fn human(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 120.0 {
        format!("{} s", s.round())
    } else if s < 7200.0 {
        format!("{} min", (s / 60.0).round())
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}
