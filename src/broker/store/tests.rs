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

fn accept(store: &Store, to: &str, id: &str) {
    let (tx, rx) = std::sync::mpsc::channel();
    store.accept(
        vec![(to.into(), msg(id))],
        Box::new(move |r| tx.send(r).unwrap()),
    );
    rx.recv().unwrap().unwrap();
}

fn owed_ids(loaded: &Loaded) -> Vec<String> {
    loaded
        .owed
        .iter()
        .map(|(to, m)| format!("{to}:{}", m.id))
        .collect()
}

#[test]
fn what_is_owed_comes_back_in_order_and_settled_copies_lose_their_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let (store, loaded) = open(dir.path()).unwrap();
    assert!(loaded.owed.is_empty());
    accept(&store, "b", "1");
    accept(&store, "b", "2");
    accept(&store, "c", "3");
    store.set_state("b", "1", DeliveryState::Submitted, None);
    store.set_state("c", "3", DeliveryState::Failed, Some("gone".into()));
    drop(store);
    let (_store, loaded) = open(dir.path()).unwrap();
    assert_eq!(owed_ids(&loaded), ["b:2", "c:3"]);
    let first = &loaded.history[0];
    assert_eq!(
        (first.state, first.body.as_str()),
        (DeliveryState::Submitted, "")
    );
    let raw = std::fs::read(dir.path().join(FILE)).unwrap();
    assert!(
        !raw.windows(6).any(|w| w == b"body 1"),
        "the delivered body is gone from the file"
    );
}

/// Copy `b:1` accepted, taken through `states`, and the store reopened.
fn reopened_after(states: &[(DeliveryState, Option<&str>)]) -> Loaded {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path()).unwrap();
    accept(&store, "b", "1");
    for (state, reason) in states {
        store.set_state("b", "1", *state, reason.map(str::to_string));
    }
    drop(store);
    open(dir.path()).unwrap().1
}

#[test]
fn a_settled_copy_stays_settled() {
    let loaded = reopened_after(&[
        (DeliveryState::Submitted, None),
        (DeliveryState::Queued, None),
    ]);
    assert!(loaded.owed.is_empty());
    assert_eq!(loaded.history[0].state, DeliveryState::Submitted);
}

#[test]
fn a_second_broker_on_the_same_dir_is_refused_while_the_first_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path()).unwrap();
    match open(dir.path()) {
        Err(OpenError::Locked { .. }) => {}
        other => panic!("expected Locked, got {:?}", other.map(|_| ())),
    }
    drop(store);
    assert!(open(dir.path()).is_ok(), "free again once the first closes");
}

#[test]
fn the_database_is_private() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path()).unwrap();
    accept(&store, "b", "1");
    store.sync();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let entry = entry.unwrap();
        let mode = entry.metadata().unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600, "{:?}", entry.file_name());
    }
}

#[test]
fn settled_copies_beyond_the_limit_are_deleted_owed_ones_never() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path()).unwrap();
    accept(&store, "b", "keep");
    for i in 0..SETTLED_KEPT + 150 {
        let id = i.to_string();
        accept(&store, "b", &id);
        store.set_state("b", &id, DeliveryState::Submitted, None);
    }
    drop(store);
    let (_store, loaded) = open(dir.path()).unwrap();
    assert_eq!(owed_ids(&loaded), ["b:keep"]);
    assert!(loaded.history.len() <= SETTLED_KEPT + 1 + writer::PRUNE_EVERY);
}

const GOOD1: &str = r#"{"op":"accept","to":"bob","msg":{"id":"m1","from":"a","to":"bob","body":"one","sent_at_ms":1}}"#;
const GOOD2: &str = r#"{"op":"accept","to":"bob","msg":{"id":"m2","from":"a","to":"bob","body":"two","sent_at_ms":2}}"#;
const GOOD3: &str = r#"{"op":"accept","to":"bob","msg":{"id":"m3","from":"a","to":"bob","body":"three","sent_at_ms":3}}"#;
const DONE2: &str = r#"{"op":"done","to":"bob","id":"m2"}"#;

fn import_text(text: &[u8]) -> (tempfile::TempDir, Loaded) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(import::LEGACY_FILE), text).unwrap();
    let (store, loaded) = open(dir.path()).unwrap();
    drop(store);
    (dir, loaded)
}

#[test]
fn an_old_journal_is_imported_once_and_removed() {
    let text = format!("{GOOD1}\n{GOOD2}\n{DONE2}\n{GOOD3}\n");
    let (dir, loaded) = import_text(text.as_bytes());
    assert_eq!(owed_ids(&loaded), ["bob:m1", "bob:m3"]);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert!(!dir.path().join(import::LEGACY_FILE).exists());
    let (_store, again) = open(dir.path()).unwrap();
    assert_eq!(owed_ids(&again), ["bob:m1", "bob:m3"]);
}

#[test]
fn a_bad_record_in_the_middle_costs_only_itself() {
    let bad_lines: [&[u8]; 3] = [
        b"this is not json",
        b"\0\0\0\0\0\0\0\0\0\0\0\0",
        br#"{"op":"accept","to":"bob","msg":{"id":7}}"#,
    ];
    for bad in bad_lines {
        for line in 2..=4 {
            let mut lines: Vec<Vec<u8>> = [GOOD1, GOOD2, GOOD3, DONE2]
                .iter()
                .map(|l| l.as_bytes().to_vec())
                .collect();
            lines.insert(line - 1, bad.to_vec());
            let mut text = lines.join(&b"\n"[..]);
            text.push(b'\n');
            let (dir, loaded) = import_text(&text);
            assert_eq!(
                owed_ids(&loaded),
                ["bob:m1", "bob:m3"],
                "bad record {bad:?} on line {line}"
            );
            assert_eq!(loaded.warnings.len(), 1);
            let w = &loaded.warnings[0];
            assert_eq!(w.code, "journal_bad_record");
            assert!(
                w.message.contains(&format!("line {line} ")),
                "{}",
                w.message
            );
            let rejected = std::fs::read(dir.path().join("messages.jsonl.rejected")).unwrap();
            assert_eq!(rejected, [bad, b"\n"].concat());
        }
    }
}

#[test]
fn only_an_unterminated_last_line_counts_as_torn() {
    let text = format!("{GOOD1}\n{GOOD2}\n{{\"op\":\"accept\",\"to\":\"bo");
    let (_dir, loaded) = import_text(text.as_bytes());
    assert_eq!(owed_ids(&loaded), ["bob:m1", "bob:m2"]);
    assert_eq!(loaded.warnings.len(), 1);
    assert_eq!(loaded.warnings[0].code, "journal_torn_record");
    assert!(loaded.warnings[0].message.contains("line 3"));
}

#[test]
fn an_old_journal_that_cannot_be_read_refuses_the_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(import::LEGACY_FILE)).unwrap();
    assert!(matches!(open(dir.path()), Err(OpenError::Import { .. })));
}

#[test]
fn a_database_that_is_a_directory_refuses_the_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(FILE)).unwrap();
    assert!(open(dir.path()).is_err());
}

#[test]
fn an_unconfirmed_copy_keeps_its_body_across_a_restart() {
    let loaded = reopened_after(&[
        (DeliveryState::Injected, None),
        (DeliveryState::Unconfirmed, Some("no sign it was taken")),
    ]);
    assert!(loaded.owed.is_empty(), "never typed again by itself");
    let kept = &loaded.history[0];
    assert_eq!(kept.state, DeliveryState::Unconfirmed);
    assert_eq!(kept.body, "body 1", "kept for the user to check and resend");
    assert_eq!(kept.reason.as_deref(), Some("no sign it was taken"));
}
