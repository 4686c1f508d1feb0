//! One worker's output on its way to subscribers, and the credit that paces it (tmux's way:
//! a pane is read only as fast as what shows it can take).
//!
//! The worker forwards output only while somebody watches it (`watch`/`unwatch` frames) and
//! only as far as the credit the broker grants: at most [`WINDOW`] bytes beyond what the
//! slowest subscriber has taken. As subscribers take chunks the grant moves on; when they
//! stop, the worker stops reading its PTY and the child blocks, as on a slow terminal. With
//! nobody watching, output is parsed in the worker and never crosses the pipe at all.
//!
//! A subscriber that takes nothing for [`STALL`] while the worker waits for credit is cut
//! loose: its next `recv` says `Lagged` (it resyncs from a snapshot, as after any lag) and
//! the flood goes on without it. One stopped client cannot stop an agent for good.
//!
//! Output bypasses the broker task: the worker's reader task decodes a frame and hands the
//! chunk to [`FeedShared::forward`], so a flood never delays anyone's request.
//! Credit is counted in output bytes received since the worker started, which both sides
//! count alike (offsets skip what was parsed unwatched). Each subscriber's queue is bounded
//! by that credit, in bytes, however small the chunks: no subscriber that keeps taking ever
//! lags.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{Notify, watch};

use super::events::{OutputChunk, Received, Subscription};

/// Output bytes a worker may have forwarded beyond what its slowest subscriber has taken.
/// Large enough that a lone flood never waits for credit on the way (BENCHMARKS.md), small
/// enough that a response behind it in the pipe is not delayed noticeably.
pub const WINDOW: u64 = 4 * 1024 * 1024;
/// Credit is returned in steps of this much, not per chunk.
const CREDIT_STEP: u64 = WINDOW / 4;
/// How long a subscriber may hold a waiting worker back before it is cut loose.
pub const STALL: Duration = Duration::from_secs(3);

/// What the worker is told: `None` unwatched, `Some(grant)` watched up to `grant` bytes.
pub type FlowState = Option<u64>;

/// The owner's handle (the broker task's record of the worker): dropping it ends every
/// subscription (`Closed` once each has taken what was sent).
pub struct Feed {
    shared: Arc<FeedShared>,
}

impl Feed {
    pub fn new(worker: Arc<str>, seq: Arc<AtomicU64>) -> (Feed, watch::Receiver<FlowState>) {
        let (flow, flow_rx) = watch::channel(None);
        let shared = Arc::new(FeedShared {
            worker,
            seq,
            flow,
            state: Mutex::new(State {
                closed: false,
                received: 0,
                granted: 0,
                subs: HashMap::new(),
                next_sub: 0,
                waiting_since: None,
            }),
        });
        (Feed { shared }, flow_rx)
    }

    /// For the worker's reader task.
    pub fn shared(&self) -> Arc<FeedShared> {
        self.shared.clone()
    }

    /// Chunks from now on; the first subscriber starts the worker forwarding.
    pub fn subscribe(&self) -> OutputSubscription {
        self.shared.subscribe()
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.closed = true;
        for sub in st.subs.values() {
            sub.wake.notify_one();
        }
    }
}

pub struct FeedShared {
    worker: Arc<str>,
    seq: Arc<AtomicU64>,
    flow: watch::Sender<FlowState>,
    state: Mutex<State>,
}

struct State {
    /// The worker's record is gone: subscribers get `Closed` once their queue is empty.
    closed: bool,
    /// Output bytes received from the worker so far.
    received: u64,
    /// What the worker has been granted (meaningful while somebody watches).
    granted: u64,
    subs: HashMap<u64, Sub>,
    next_sub: u64,
    /// Since when the worker has used all its credit (while somebody watches).
    waiting_since: Option<Instant>,
}

#[derive(Debug)]
struct Sub {
    /// How far (in received bytes) this subscriber has taken.
    taken: u64,
    /// Cut loose for holding the worker back: nothing more is queued for it, and its next
    /// `recv` reports a lag.
    cut: bool,
    /// Chunks forwarded and not yet taken (at most the credit's worth).
    queue: VecDeque<OutputChunk>,
    wake: Arc<Notify>,
}

impl State {
    /// How far the slowest subscriber still counted has taken (`received` without any).
    fn released(&self) -> u64 {
        self.subs
            .values()
            .filter(|s| !s.cut)
            .map(|s| s.taken)
            .min()
            .unwrap_or(self.received)
    }
}

impl FeedShared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn subscribe(self: &Arc<Self>) -> OutputSubscription {
        let mut st = self.lock();
        let id = st.next_sub;
        st.next_sub += 1;
        if st.subs.is_empty() && !st.closed {
            st.granted = st.received + WINDOW;
            st.waiting_since = None;
            self.flow.send_replace(Some(st.granted));
        }
        let taken = st.received;
        let wake = Arc::new(Notify::new());
        st.subs.insert(
            id,
            Sub {
                taken,
                cut: false,
                queue: VecDeque::new(),
                wake: wake.clone(),
            },
        );
        OutputSubscription {
            source: Source::Feed(Credit {
                feed: self.clone(),
                id,
                wake,
            }),
        }
    }

    /// Whether anybody subscribes to the output now.
    pub fn watched(&self) -> bool {
        !self.lock().subs.is_empty()
    }

    /// A chunk the worker forwarded: to every subscriber.
    pub fn forward(&self, offset: u64, data: Bytes) {
        let mut st = self.lock();
        st.received += data.len() as u64;
        if st.received >= st.granted && !st.subs.is_empty() {
            st.waiting_since.get_or_insert_with(Instant::now);
        }
        let chunk = OutputChunk {
            seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
            worker: self.worker.clone(),
            offset,
            data,
        };
        for sub in st.subs.values_mut().filter(|s| !s.cut) {
            sub.queue.push_back(chunk.clone());
            sub.wake.notify_one();
        }
    }

    /// When the worker, waiting for credit, will have waited [`STALL`].
    pub fn stall_deadline(&self) -> Option<Instant> {
        self.lock().waiting_since.map(|t| t + STALL)
    }

    /// Cuts loose the subscribers that have held a waiting worker back for [`STALL`].
    pub fn check_stall(&self) {
        let mut st = self.lock();
        let Some(since) = st.waiting_since else {
            return;
        };
        if since.elapsed() < STALL {
            return;
        }
        let received = st.received;
        let mut cut = 0;
        for sub in st
            .subs
            .values_mut()
            .filter(|s| s.taken < received && !s.cut)
        {
            sub.cut = true;
            sub.queue.clear();
            sub.wake.notify_one();
            cut += 1;
        }
        tracing::warn!(
            worker = %self.worker,
            subscribers = cut,
            "output subscribers took nothing for {STALL:?}; cut loose (they resync)"
        );
        self.regrant(&mut st);
    }

    /// Grants the worker credit up to [`WINDOW`] past the slowest subscriber, in steps.
    fn regrant(&self, st: &mut State) {
        if st.subs.is_empty() {
            return;
        }
        let want = st.released() + WINDOW;
        if want >= st.granted + CREDIT_STEP || (st.received >= st.granted && want > st.granted) {
            st.granted = want;
            st.waiting_since = None;
            self.flow.send_replace(Some(want));
        }
    }
}

/// A subscription's tie to its feed: what it takes returns credit.
struct Credit {
    feed: Arc<FeedShared>,
    id: u64,
    wake: Arc<Notify>,
}

impl Drop for Credit {
    fn drop(&mut self) {
        let mut st = self.feed.lock();
        if st.subs.remove(&self.id).is_none() {
            return;
        }
        if st.subs.is_empty() {
            st.waiting_since = None;
            self.feed.flow.send_replace(None);
        } else {
            self.feed.regrant(&mut st);
        }
    }
}

impl Credit {
    /// The next chunk, a lag or the end, if one is there now.
    fn poll(&self) -> Option<Received<OutputChunk>> {
        let mut st = self.feed.lock();
        let received = st.received;
        let closed = st.closed;
        let sub = st.subs.get_mut(&self.id)?;
        if sub.cut {
            // Starts again from the newest chunk.
            sub.cut = false;
            sub.taken = received;
            return Some(Received::Lagged(0));
        }
        match sub.queue.pop_front() {
            Some(chunk) => {
                sub.taken += chunk.data.len() as u64;
                self.feed.regrant(&mut st);
                Some(Received::Item(chunk))
            }
            None if closed => Some(Received::Closed),
            None => None,
        }
    }
}

enum Source {
    Feed(Credit),
    /// Relayed from a remote broker: no credit to return.
    Remote(Subscription<OutputChunk>),
}

/// A worker's output chunks: each taken returns credit to the worker (for a subscription of
/// this broker; one relayed from a remote broker has none to return).
pub struct OutputSubscription {
    source: Source,
}

impl From<Subscription<OutputChunk>> for OutputSubscription {
    fn from(inner: Subscription<OutputChunk>) -> Self {
        OutputSubscription {
            source: Source::Remote(inner),
        }
    }
}

impl OutputSubscription {
    pub async fn recv(&mut self) -> Received<OutputChunk> {
        match &mut self.source {
            Source::Remote(inner) => inner.recv().await,
            Source::Feed(credit) => loop {
                if let Some(got) = credit.poll() {
                    return got;
                }
                // A chunk queued meanwhile leaves a permit: no wake-up is lost.
                credit.wake.clone().notified().await;
            },
        }
    }

    /// The chunks (and lags) as a stream, which ends when the subscription closes.
    pub fn into_stream(self) -> impl futures_util::Stream<Item = Received<OutputChunk>> + Send {
        futures_util::stream::unfold(self, |mut sub| async move {
            match sub.recv().await {
                Received::Closed => None,
                item => Some((item, sub)),
            }
        })
    }

    /// Non-blocking: `None` when nothing is waiting.
    pub fn try_recv(&mut self) -> Option<Received<OutputChunk>> {
        match &mut self.source {
            Source::Remote(inner) => inner.try_recv(),
            Source::Feed(credit) => credit.poll(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed() -> (Feed, watch::Receiver<FlowState>) {
        Feed::new(Arc::from("w"), Arc::new(AtomicU64::new(0)))
    }

    fn chunk(n: usize) -> Bytes {
        Bytes::from(vec![b'x'; n])
    }

    #[tokio::test]
    async fn the_first_subscriber_watches_and_the_last_one_unwatches() {
        let (feed, flow) = feed();
        assert_eq!(*flow.borrow(), None, "nobody watches at first");
        let a = feed.subscribe();
        assert_eq!(*flow.borrow(), Some(WINDOW));
        let b = feed.subscribe();
        drop(a);
        assert_eq!(*flow.borrow(), Some(WINDOW), "one still watches");
        drop(b);
        assert_eq!(*flow.borrow(), None);
    }

    #[tokio::test]
    async fn credit_follows_the_slowest_subscriber_in_steps() {
        let (feed, flow) = feed();
        let shared = feed.shared();
        let mut fast = feed.subscribe();
        let mut slow = feed.subscribe();
        let n = CREDIT_STEP as usize;
        shared.forward(0, chunk(n));
        shared.forward(n as u64, chunk(n));
        for _ in 0..2 {
            assert!(matches!(fast.recv().await, Received::Item(_)));
        }
        assert_eq!(
            *flow.borrow(),
            Some(WINDOW),
            "the slow one took nothing yet"
        );
        assert!(matches!(slow.recv().await, Received::Item(_)));
        assert_eq!(*flow.borrow(), Some(WINDOW + CREDIT_STEP));
        // The slow one leaves: the grant follows the fast one.
        drop(slow);
        assert_eq!(*flow.borrow(), Some(2 * CREDIT_STEP + WINDOW));
    }

    #[tokio::test]
    async fn a_subscriber_that_holds_a_waiting_worker_back_is_cut_loose_after_the_stall() {
        let (feed, flow) = feed();
        let shared = feed.shared();
        let mut stuck = feed.subscribe();
        shared.forward(0, chunk(WINDOW as usize));
        let deadline = shared
            .stall_deadline()
            .expect("the worker waits for credit");
        assert!(deadline > Instant::now() + STALL - Duration::from_millis(100));
        shared.check_stall();
        assert_eq!(*flow.borrow(), Some(WINDOW), "not before the stall");
        // As if the stall had passed.
        shared.lock().waiting_since = Some(Instant::now() - STALL);
        shared.check_stall();
        assert_eq!(*flow.borrow(), Some(2 * WINDOW), "the flood goes on");
        assert!(matches!(stuck.recv().await, Received::Lagged(_)));
        shared.forward(WINDOW, chunk(10));
        match stuck.recv().await {
            Received::Item(c) => assert_eq!(c.offset, WINDOW, "it rejoined at the newest"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn dropping_the_feed_closes_subscriptions_after_what_was_sent() {
        let (feed, _flow) = feed();
        let shared = feed.shared();
        let mut sub = feed.subscribe();
        shared.forward(0, chunk(3));
        drop(feed);
        assert!(matches!(sub.recv().await, Received::Item(_)));
        assert!(matches!(sub.recv().await, Received::Closed));
    }
}
