//! How much output the worker may forward: the credit its broker grants while someone
//! watches (`watch`/`unwatch` frames).
//!
//! Unwatched, output is still read and parsed at full speed (snapshots and offsets stay
//! exact) but nothing is forwarded. Watched, the worker forwards until it has used its grant;
//! then its loop stops taking output, the reader blocks, the PTY fills and the child blocks
//! on its writes, as on a slow terminal, until the watchers have consumed enough for the
//! broker to grant more.

#[derive(Debug, Default)]
pub struct Flow {
    watched: bool,
    /// Output bytes forwarded since the worker started (what a grant is counted in).
    forwarded: u64,
    grant: u64,
}

impl Flow {
    pub fn watch(&mut self, grant: u64) {
        self.watched = true;
        self.grant = grant;
    }

    pub fn unwatch(&mut self) {
        self.watched = false;
    }

    /// Bytes that may be forwarded now; `None` while nobody watches (parse only).
    pub fn allowance(&self) -> Option<usize> {
        self.watched.then(|| {
            usize::try_from(self.grant.saturating_sub(self.forwarded)).unwrap_or(usize::MAX)
        })
    }

    /// Whether the loop may take more output from the PTY now.
    pub fn may_read(&self) -> bool {
        self.allowance() != Some(0)
    }

    pub fn forwarded(&mut self, n: usize) {
        self.forwarded += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwatched_output_is_never_held_and_watched_output_stops_at_the_grant() {
        let mut flow = Flow::default();
        assert_eq!(flow.allowance(), None);
        assert!(flow.may_read());
        flow.watch(100);
        flow.forwarded(60);
        assert_eq!(flow.allowance(), Some(40));
        flow.forwarded(40);
        assert!(!flow.may_read(), "out of credit");
        flow.watch(150);
        assert_eq!(flow.allowance(), Some(50));
        flow.unwatch();
        assert!(flow.may_read(), "nobody watches: read and parse freely");
        // A grant below what was already forwarded (the broker had not yet received it all)
        // allows nothing rather than wrapping.
        flow.watch(10);
        assert_eq!(flow.allowance(), Some(0));
    }
}
