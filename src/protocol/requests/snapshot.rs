//! `snapshot`: the worker's current screen.
//!
//! # Format
//!
//! Request `{"format":"plain"|"ansi"|"cells","scrollback":N}`; response
//! `{"format","rows","cols","cursor":[row,col],"offset","screen","scrollback"}` where `screen` is
//! - `plain`: an array of text lines, one per row, trailing blanks trimmed;
//! - `ansi`: base64 of escape sequences that repaint the screen on a fresh terminal of the same
//!   size, modes included (alternate screen, bracketed paste, cursor visibility…);
//! - `cells`: an array of rows, each an array of runs `{"t","fg","bg","b","i","u","r"}` where
//!   `fg`/`bg` are `null` (default), a palette index, or `"#rrggbb"`.
//!
//! `scrollback` (optional, `ansi` only) asks for up to N rows of the worker's history in front
//! of the screen: fed to a fresh terminal, they scroll into its scrollback before the screen is
//! drawn. The response's `scrollback` says how many rows came (the worker keeps a bounded
//! history; absent when none).
//!
//! `offset` is the count of PTY bytes the screen reflects, so a client can apply only the
//! `output` chunks at or past it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{RequestKind, WorkerRequest};

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotFormat {
    #[default]
    Plain,
    Ansi,
    Cells,
}

impl std::str::FromStr for SnapshotFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "plain" => Ok(SnapshotFormat::Plain),
            "ansi" => Ok(SnapshotFormat::Ansi),
            "cells" => Ok(SnapshotFormat::Cells),
            other => Err(format!(
                "unknown snapshot format {other:?} (plain, ansi or cells)"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotRequest {
    #[serde(default)]
    pub format: SnapshotFormat,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub scrollback: u32,
}

impl From<SnapshotFormat> for SnapshotRequest {
    fn from(format: SnapshotFormat) -> Self {
        SnapshotRequest {
            format,
            scrollback: 0,
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Snapshot {
    pub format: SnapshotFormat,
    pub rows: u16,
    pub cols: u16,
    pub cursor: [u16; 2],
    pub offset: u64,
    pub screen: Value,
    /// Rows of history in front of an `ansi` screen.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub scrollback: u32,
}

impl Snapshot {
    /// The `plain` screen as lines (empty if this is another format).
    pub fn plain_lines(&self) -> Vec<String> {
        self.screen
            .as_array()
            .map(|rows| {
                rows.iter()
                    .filter_map(|r| r.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The `ansi` repaint bytes (empty if this is another format).
    pub fn ansi_bytes(&self) -> Vec<u8> {
        self.screen
            .as_str()
            .and_then(|s| crate::b64::decode(s).ok())
            .unwrap_or_default()
    }
}

impl WorkerRequest for SnapshotRequest {
    const KIND: RequestKind = RequestKind::Snapshot;
    type Response = Snapshot;
}

/// One run of identically styled cells in a `cells` snapshot.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CellRun {
    pub t: String,
    pub fg: Option<Value>,
    pub bg: Option<Value>,
    pub b: bool,
    pub i: bool,
    pub u: bool,
    pub r: bool,
}
