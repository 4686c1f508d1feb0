//! The relay-message journal (`--serve`): every accepted message is on disk before the
//! sender is told it was accepted, and stays there until its worker reports it injected, so
//! a broker restart loses nothing.
//!
//! # Format
//!
//! `messages.jsonl` in the state dir, one record per line, appended and fsynced:
//!
//! ```text
//! {"op":"accept","to":"bob","msg":{"id","from","to","body","sent_at_ms"}}
//! {"op":"done","to":"bob","id":"…"}
//! ```
//!
//! On start the file is replayed: accepted minus done is what is still owed, in order. A torn
//! last record (the broker died mid-write) is detected, reported and cut off — never a failed
//! start. When most of the file is finished business it is compacted: the live records are
//! written to a new file, fsynced, and renamed over the old one.
//!
//! Why a JSONL file and not SQLite: the access pattern is append, replay once, rewrite rarely;
//! one fsync per record is the whole durability story, and the file stays greppable.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::requests::deliver::RelayMessage;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Record {
    Accept { to: String, msg: RelayMessage },
    Done { to: String, id: String },
}

/// Compact once at least this many records are finished and they are most of the file.
const COMPACT_AFTER: usize = 1000;

pub struct Journal {
    path: PathBuf,
    file: File,
    /// Records in the file, and how many of them are finished (`done` + their `accept`).
    records: usize,
    finished: usize,
}

/// What replay found.
pub struct Replayed {
    /// Messages still owed, oldest first, with their recipient.
    pub owed: Vec<(String, RelayMessage)>,
    /// A torn or unreadable record that was cut off, if any.
    pub torn: Option<String>,
}

impl Journal {
    /// Opens (creating) the journal and replays it.
    pub fn open(path: &Path) -> std::io::Result<(Journal, Replayed)> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut owed: Vec<(String, RelayMessage)> = Vec::new();
        let mut records = 0;
        let mut good_len = 0u64;
        let mut torn = None;
        if let Ok(file) = File::open(path) {
            let mut reader = BufReader::new(file);
            let mut line = Vec::new();
            loop {
                line.clear();
                let n = reader.read_until(b'\n', &mut line)?;
                if n == 0 {
                    break;
                }
                let complete = line.ends_with(b"\n");
                match serde_json::from_slice::<Record>(&line) {
                    Ok(record) if complete => {
                        records += 1;
                        good_len += n as u64;
                        match record {
                            Record::Accept { to, msg } => owed.push((to, msg)),
                            Record::Done { to, id } => {
                                owed.retain(|(t, m)| !(t == &to && m.id == id))
                            }
                        }
                    }
                    _ => {
                        torn = Some(String::from_utf8_lossy(&line).chars().take(200).collect());
                        break;
                    }
                }
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        if torn.is_some() {
            // Cut the torn tail so new records start on a clean line.
            file.set_len(good_len)?;
            file.sync_all()?;
        }
        let journal = Journal {
            path: path.to_path_buf(),
            file,
            records,
            finished: records - owed.len(),
        };
        Ok((journal, Replayed { owed, torn }))
    }

    fn append(&mut self, record: &Record) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(record).expect("records serialize");
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.sync_data()?;
        self.records += 1;
        Ok(())
    }

    pub fn accept(&mut self, to: &str, msg: &RelayMessage) -> std::io::Result<()> {
        self.append(&Record::Accept {
            to: to.to_string(),
            msg: msg.clone(),
        })
    }

    /// Records that `id` reached `to`; compacts when the file is mostly finished business.
    /// `live` gives the messages still owed, for the compaction.
    pub fn done(
        &mut self,
        to: &str,
        id: &str,
        live: impl FnOnce() -> Vec<(String, RelayMessage)>,
    ) -> std::io::Result<()> {
        self.append(&Record::Done {
            to: to.to_string(),
            id: id.to_string(),
        })?;
        self.finished += 2;
        if self.finished >= COMPACT_AFTER && self.finished * 2 >= self.records {
            self.compact(live())?;
        }
        Ok(())
    }

    /// Rewrites the journal with only what is still owed (write, fsync, rename).
    pub fn compact(&mut self, live: Vec<(String, RelayMessage)>) -> std::io::Result<()> {
        let tmp = self.path.with_extension("jsonl.tmp");
        let mut out = File::create(&tmp)?;
        for (to, msg) in &live {
            let mut line = serde_json::to_vec(&Record::Accept {
                to: to.clone(),
                msg: msg.clone(),
            })
            .expect("records serialize");
            line.push(b'\n');
            out.write_all(&line)?;
        }
        out.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent()
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        self.records = live.len();
        self.finished = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: &str) -> RelayMessage {
        RelayMessage {
            id: id.into(),
            from: "a".into(),
            to: "b".into(),
            body: format!("body {id}"),
            sent_at_ms: 1,
            when: None,
        }
    }

    #[test]
    fn replay_returns_what_is_owed_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("messages.jsonl");
        let (mut j, r) = Journal::open(&path).unwrap();
        assert!(r.owed.is_empty());
        j.accept("b", &msg("1")).unwrap();
        j.accept("b", &msg("2")).unwrap();
        j.accept("c", &msg("3")).unwrap();
        j.done("b", "1", Vec::new).unwrap();
        drop(j);
        let (_, r) = Journal::open(&path).unwrap();
        let ids: Vec<_> = r
            .owed
            .iter()
            .map(|(to, m)| format!("{to}:{}", m.id))
            .collect();
        assert_eq!(ids, ["b:2", "c:3"]);
        assert!(r.torn.is_none());
    }

    #[test]
    fn torn_last_record_is_cut_off_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("messages.jsonl");
        let (mut j, _) = Journal::open(&path).unwrap();
        j.accept("b", &msg("1")).unwrap();
        drop(j);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"op":"accept","to":"b","msg":{"id":"2","fr"#)
            .unwrap();
        drop(f);
        let (mut j, r) = Journal::open(&path).unwrap();
        assert!(r.torn.is_some());
        assert_eq!(r.owed.len(), 1);
        j.accept("b", &msg("3")).unwrap();
        drop(j);
        let (_, r) = Journal::open(&path).unwrap();
        assert!(
            r.torn.is_none(),
            "the tail was cut, the file is clean again"
        );
        let ids: Vec<_> = r.owed.iter().map(|(_, m)| m.id.clone()).collect();
        assert_eq!(ids, ["1", "3"]);
    }

    #[test]
    fn compaction_keeps_only_live_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("messages.jsonl");
        let (mut j, _) = Journal::open(&path).unwrap();
        j.accept("b", &msg("keep")).unwrap();
        for i in 0..COMPACT_AFTER {
            let id = i.to_string();
            j.accept("b", &msg(&id)).unwrap();
            j.done("b", &id, || vec![("b".into(), msg("keep"))])
                .unwrap();
        }
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert!(lines < 10, "compacted to {lines} lines");
        drop(j);
        let (_, r) = Journal::open(&path).unwrap();
        assert_eq!(r.owed.len(), 1);
        assert_eq!(r.owed[0].1.id, "keep");
    }
}
