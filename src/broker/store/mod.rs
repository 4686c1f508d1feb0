//! What must survive a broker restart (`--serve`): every relay message accepted, and where
//! each recipient's copy stands, in one SQLite database in the state dir (`state.db`).
//!
//! - **Durable before "accepted".** A message's copies are committed (WAL, `synchronous=FULL`)
//!   before the sender hears 202; a failed commit (disk full) changes nothing on disk and the
//!   sender is refused with `journal_full`.
//! - **Off the broker task.** Writes go to one writer thread ([`writer`]) that commits what has
//!   queued up in one transaction (group commit); the broker task never waits for an fsync.
//! - **One broker per state dir.** The database is opened in exclusive locking mode and written
//!   at once, so a second broker on the same dir fails to open it and says who holds it.
//! - **Bodies do not linger.** A copy's body is erased once nothing more can happen to it
//!   (`submitted`, `dropped`, or `injected` into a program that gives no receipts); pages are
//!   zeroed when freed (`secure_delete`), and the file is created `0600`.
//! - **Bounded.** Settled copies beyond the newest [`SETTLED_KEPT`] are deleted.
//!
//! A `messages.jsonl` journal of an earlier version is imported once ([`import`]) and removed.

mod import;
mod writer;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use crate::broker::history::MessageRecord;
use crate::protocol::DeliveryState;
use crate::protocol::requests::deliver::{RelayMessage, When};

pub use writer::Store;

/// The database's file name in the state dir.
pub const FILE: &str = "state.db";
/// Settled copies kept on disk (the newest); copies still owed are never deleted.
pub const SETTLED_KEPT: usize = 1000;
const SCHEMA_VERSION: i64 = 1;

/// Why the store could not be opened. Each is a reason to refuse to start: a broker that
/// answers 202 without a durable journal would promise what it cannot keep.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "{path} is in use by another broker{holder}; stop it or use another --state-dir",
        path = path.display()
    )]
    Locked { path: PathBuf, holder: String },
    #[error("cannot open {path}: {source}", path = path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot use {path}: {source}", path = path.display())]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot import {path}: {reason}", path = path.display())]
    Import { path: PathBuf, reason: String },
}

/// Why a write failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    #[error("the disk is full: {0}")]
    Full(String),
    #[error("{0}")]
    Failed(String),
    #[error("the store is closed")]
    Closed,
}

impl From<rusqlite::Error> for WriteError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => WriteError::Full(e.to_string()),
            _ => WriteError::Failed(e.to_string()),
        }
    }
}

/// What the store held when it was opened.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Copies still owed, oldest first, with their recipient.
    pub owed: Vec<(String, RelayMessage)>,
    /// Every copy kept (owed and settled), oldest first.
    pub history: Vec<MessageRecord>,
    /// What an import of an old journal found wrong, for the user (one line each).
    pub warnings: Vec<Warning>,
    /// The saved fleet, in the order its workers were started: (name, JSON record).
    pub fleet: Vec<(String, String)>,
}

/// Something the user should hear about once the broker is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub code: &'static str,
    pub message: String,
}

/// Opens (creating) `dir/state.db`, takes its lock, imports `dir/messages.jsonl` if there is
/// one, and starts the writer.
pub fn open(dir: &Path) -> Result<(Store, Loaded), OpenError> {
    let path = dir.join(FILE);
    let io = |source| OpenError::Io {
        path: path.clone(),
        source,
    };
    crate::fsutil::create_private_file(&path).map_err(io)?;
    let sql = |source| OpenError::Sqlite {
        path: path.clone(),
        source,
    };
    let conn = Connection::open(&path).map_err(sql)?;
    conn.busy_timeout(std::time::Duration::ZERO).map_err(sql)?;
    // Exclusive locking: the first write below takes the lock and keeps it until we close,
    // so another broker cannot read or write this database meanwhile.
    conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
        .map_err(sql)?;
    let locked = |e: &rusqlite::Error| {
        matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    };
    let first = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
        .and_then(|_| conn.execute_batch(SCHEMA));
    if let Err(e) = first {
        return Err(if locked(&e) {
            OpenError::Locked {
                holder: holder(dir),
                path,
            }
        } else {
            sql(e)
        });
    }
    conn.execute_batch(
        "PRAGMA synchronous = FULL; PRAGMA secure_delete = ON; PRAGMA journal_size_limit = 1048576;",
    )
    .map_err(sql)?;
    let version: Option<i64> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get::<_, String>(0),
        )
        .optional()
        .map_err(sql)?
        .and_then(|v| v.parse().ok());
    if version.is_some_and(|v| v > SCHEMA_VERSION) {
        return Err(OpenError::Import {
            path,
            reason: format!(
                "it was written by a newer brokertui (schema {}); this one knows {SCHEMA_VERSION}",
                version.unwrap_or_default()
            ),
        });
    }
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?1), ('broker_pid', ?2)",
        params![SCHEMA_VERSION.to_string(), std::process::id().to_string()],
    )
    .map_err(sql)?;
    let mut warnings = Vec::new();
    let legacy = dir.join(import::LEGACY_FILE);
    if std::fs::symlink_metadata(&legacy).is_ok() {
        warnings = import::import(&conn, &legacy)?;
    }
    let loaded = load(&conn).map_err(sql)?;
    Ok((Store::start(conn), Loaded { warnings, ..loaded }))
}

/// Who holds a locked state dir, from its connection file: " (pid N, URL)" or "".
fn holder(dir: &Path) -> String {
    std::fs::read_to_string(crate::client::connection_path(dir))
        .ok()
        .and_then(|t| serde_json::from_str::<crate::client::Connection>(&t).ok())
        .map(|c| format!(" (pid {}, {})", c.pid, c.url))
        .unwrap_or_default()
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    sender TEXT NOT NULL,
    addressed TEXT NOT NULL,
    body TEXT,
    sent_at_ms INTEGER NOT NULL,
    deliver_when TEXT,
    state TEXT NOT NULL,
    reason TEXT,
    owed INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    UNIQUE (id, recipient)
);
CREATE INDEX IF NOT EXISTS messages_owed ON messages (owed, seq);
CREATE TABLE IF NOT EXISTS fleet (
    name TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    started_ms INTEGER NOT NULL
);
";

fn load(conn: &Connection) -> rusqlite::Result<Loaded> {
    let mut stmt = conn.prepare(
        "SELECT id, recipient, sender, addressed, body, sent_at_ms, deliver_when, state, reason,
                owed, updated_ms
         FROM messages ORDER BY seq",
    )?;
    let mut loaded = Loaded::default();
    let mut fleet = conn.prepare("SELECT name, record FROM fleet ORDER BY started_ms, name")?;
    loaded.fleet = fleet
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, bool>(9)?,
            RelayMessage {
                id: r.get(0)?,
                from: r.get(2)?,
                to: r.get(3)?,
                body: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                sent_at_ms: r.get(5)?,
                when: r
                    .get::<_, Option<String>>(6)?
                    .and_then(|w| serde_json::from_value::<When>(w.into()).ok()),
            },
            r.get::<_, String>(1)?,
            r.get::<_, String>(7)?,
            r.get::<_, Option<String>>(8)?,
            r.get::<_, u64>(10)?,
        ))
    })?;
    for row in rows {
        let (owed, msg, recipient, state, reason, updated_ms) = row?;
        let state =
            serde_json::from_value::<DeliveryState>(state.into()).unwrap_or(DeliveryState::Queued);
        loaded.history.push(MessageRecord {
            id: msg.id.clone(),
            from: msg.from.clone(),
            to: recipient.clone(),
            body: msg.body.clone(),
            sent_at_ms: msg.sent_at_ms,
            when: msg.when,
            state,
            reason,
            updated_ms,
        });
        if owed {
            loaded.owed.push((recipient, msg));
        }
    }
    Ok(loaded)
}

fn when_text(when: Option<When>) -> Option<&'static str> {
    when.map(|w| match w {
        When::Idle => "idle",
        When::Now => "now",
    })
}

/// Inserts one accepted copy (owed, queued); an existing copy of the same id is left alone.
fn insert(tx: &rusqlite::Transaction, to: &str, msg: &RelayMessage) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT OR IGNORE INTO messages
             (id, recipient, sender, addressed, body, sent_at_ms, deliver_when, state, owed, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'queued', 1, ?8)",
        params![
            msg.id,
            to,
            msg.from,
            msg.to,
            msg.body,
            msg.sent_at_ms,
            when_text(msg.when),
            crate::protocol::now_ms()
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests;
