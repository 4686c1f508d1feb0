//! The one-time import of an earlier version's journal, `messages.jsonl`: one JSON record per
//! line, `{"op":"accept","to","msg"}` or `{"op":"done","to","id"}`; accepted minus done is
//! what is still owed.
//!
//! A record that cannot be read is skipped and reported by line, and every valid record after
//! it is still imported; only an unterminated last line is taken for a write the old broker
//! died in. After the import commits, the file is removed — or, when it had unreadable lines,
//! kept as `messages.jsonl.rejected` (`0600`) holding only those lines, for the user to look at.

use std::io::{BufRead, BufReader};
use std::path::Path;

use rusqlite::{Connection, params};
use serde::Deserialize;

use super::{OpenError, Warning, insert};
use crate::protocol::requests::deliver::RelayMessage;

pub const LEGACY_FILE: &str = "messages.jsonl";

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Record {
    Accept { to: String, msg: RelayMessage },
    Done { to: String, id: String },
}

/// What the user sees of a bad line: its start, printable.
fn excerpt(line: &[u8]) -> String {
    String::from_utf8_lossy(line)
        .chars()
        .take(80)
        .map(|c| if c.is_control() { '·' } else { c })
        .collect()
}

pub fn import(conn: &Connection, path: &Path) -> Result<Vec<Warning>, OpenError> {
    let failed = |reason: String| OpenError::Import {
        path: path.to_path_buf(),
        reason,
    };
    let file = crate::fsutil::open_private(path).map_err(|e| failed(e.to_string()))?;
    let mut reader = BufReader::new(file);
    let mut records = Vec::new();
    let mut bad: Vec<(usize, Vec<u8>)> = Vec::new();
    let mut torn = None;
    let mut line = Vec::new();
    for number in 1.. {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| failed(e.to_string()))?;
        if n == 0 {
            break;
        }
        if !line.ends_with(b"\n") {
            torn = Some((number, excerpt(&line)));
            break;
        }
        match serde_json::from_slice::<Record>(&line) {
            Ok(record) => records.push(record),
            Err(_) if line.iter().all(|b| b.is_ascii_whitespace()) => {}
            Err(_) => bad.push((number, line.clone())),
        }
    }
    let sql = |e: rusqlite::Error| failed(e.to_string());
    let tx = conn.unchecked_transaction().map_err(sql)?;
    let (mut accepted, mut done) = (0, 0);
    for record in &records {
        match record {
            Record::Accept { to, msg } => {
                insert(&tx, to, msg).map_err(sql)?;
                accepted += 1;
            }
            Record::Done { to, id } => {
                done += tx
                    .execute(
                        "UPDATE messages SET state = 'injected', owed = 0, body = NULL
                         WHERE id = ?1 AND recipient = ?2 AND owed = 1",
                        params![id, to],
                    )
                    .map_err(sql)?;
            }
        }
    }
    tx.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('imported_jsonl', ?1)",
        params![crate::protocol::now_ms().to_string()],
    )
    .map_err(sql)?;
    tx.commit().map_err(sql)?;
    tracing::info!(accepted, done, "imported {}", path.display());

    let mut warnings = Vec::new();
    if !bad.is_empty() {
        let rejected = path.with_extension("jsonl.rejected");
        let mut text = Vec::new();
        for (_, l) in &bad {
            text.extend_from_slice(l);
        }
        crate::fsutil::write_private(&rejected, &text).map_err(|e| failed(e.to_string()))?;
        let lines: Vec<String> = bad
            .iter()
            .map(|(n, l)| format!("line {n} ({:?})", excerpt(l)))
            .collect();
        warnings.push(Warning {
            code: "journal_bad_record",
            message: format!(
                "{}: skipped {} unreadable record(s): {}; every readable record, before and after them, was recovered; the skipped lines are in {}",
                path.display(),
                bad.len(),
                lines.join(", "),
                rejected.display()
            ),
        });
    }
    if let Some((n, text)) = torn {
        warnings.push(Warning {
            code: "journal_torn_record",
            message: format!(
                "{}: skipped a torn last record on line {n} ({text:?}), a write the previous broker died in; everything before it was recovered",
                path.display()
            ),
        });
    }
    std::fs::remove_file(path).map_err(|e| failed(format!("imported, but not removed: {e}")))?;
    Ok(warnings)
}
