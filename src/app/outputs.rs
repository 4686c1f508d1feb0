//! Every pane's output subscription in one [`StreamMap`], polled by the run loop itself: a
//! chunk is taken only when the loop is ready to apply it, so the credit each worker gets
//! back follows what the TUI really shows (no task per pane reading ahead of it).

use std::pin::Pin;

use futures_util::{FutureExt, Stream, StreamExt};
use tokio_stream::StreamMap;

use crate::broker::{OutputChunk, OutputSubscription, Received};

type Chunks = Pin<Box<dyn Stream<Item = Received<OutputChunk>> + Send>>;

#[derive(Default)]
pub struct Outputs {
    map: StreamMap<String, Chunks>,
}

impl Outputs {
    pub fn insert(&mut self, name: &str, sub: OutputSubscription) {
        self.map
            .insert(name.to_string(), Box::pin(sub.into_stream()));
    }

    pub fn remove(&mut self, name: &str) {
        self.map.remove(name);
    }

    pub fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// The next chunk (or lag) of any pane; pending while there is none.
    pub async fn next(&mut self) -> (String, Received<OutputChunk>) {
        match self.map.next().await {
            Some(item) => item,
            None => std::future::pending().await,
        }
    }

    /// A chunk already waiting, if any.
    pub fn try_next(&mut self) -> Option<(String, Received<OutputChunk>)> {
        self.map.next().now_or_never().flatten()
    }
}
