//! Property tests: random and mutated frames thrown at both decoders. Nothing may panic;
//! every frame is either decoded or rejected with a typed error.

use bytes::BytesMut;
use proptest::prelude::*;
use tokio_util::codec::Decoder;

use super::codec::{Line, LineCodec};
use super::*;
use crate::broker::process::{Decoded, WorkerMsg, decode as broker_decode};
use crate::protocol::requests::deliver::RelayMessage;
use crate::protocol::requests::mode::SetMode;
use crate::protocol::requests::snapshot::SnapshotRequest;

/// Valid frames of every kind, both directions, to mutate.
fn seeds() -> Vec<String> {
    [
        r#"{"v":1,"type":"input","payload":{"data":"ls\r"}}"#,
        r#"{"v":1,"type":"input","payload":{"data_b64":"bHMN"}}"#,
        r#"{"v":1,"type":"resize","payload":{"rows":40,"cols":100}}"#,
        r#"{"v":1,"type":"deliver","request_id":"7","payload":{"id":"m","from":"a","to":"b","body":"hi","sent_at_ms":1}}"#,
        r#"{"v":1,"type":"snapshot","request_id":"8","payload":{"format":"cells"}}"#,
        r#"{"v":1,"type":"set_mode","request_id":"9","payload":{"mode":"human"}}"#,
        r#"{"v":1,"type":"shutdown","payload":{"grace_ms":10}}"#,
        r#"{"v":1,"type":"ready","payload":{"pid":1,"rows":24,"cols":80,"protocol":1}}"#,
        r#"{"v":1,"type":"output","payload":{"offset":3,"data_b64":"aGVsbG8="}}"#,
        r#"{"v":1,"type":"response","request_id":"7","payload":{"kind":"get_mode","ok":{"mode":"relay"},"error":null}}"#,
        r#"{"v":1,"type":"delivery","payload":{"id":"m","state":"injected"}}"#,
        r#"{"v":1,"type":"exited","payload":{"code":0,"signal":null}}"#,
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

/// Everything the worker does to decode one line from the broker.
fn worker_decode(line: &[u8]) -> Result<(), DecodeError> {
    let env = decode_envelope(line)?;
    match env.kind.as_str() {
        "input" => decode_payload::<InputPayload>(&env).and_then(|p| {
            p.bytes().map(drop).map_err(|m| DecodeError::BadPayload {
                kind: env.kind.clone(),
                message: m,
            })
        }),
        "resize" => decode_payload::<ResizePayload>(&env).map(drop),
        "shutdown" => decode_payload::<ShutdownPayload>(&env).map(drop),
        "deliver" => decode_payload::<RelayMessage>(&env).map(drop),
        "snapshot" => decode_payload::<SnapshotRequest>(&env).map(drop),
        "set_mode" => decode_payload::<SetMode>(&env).map(drop),
        "get_mode" | "pending" | "flush" => Ok(()),
        other => Err(DecodeError::UnknownType(other.to_string())),
    }
}

fn mutate(seed: &str, ops: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut bytes = seed.as_bytes().to_vec();
    for &(pos, op, byte) in ops {
        if bytes.is_empty() {
            bytes.push(byte);
            continue;
        }
        let i = pos % bytes.len();
        match op % 4 {
            0 => bytes[i] = byte,
            1 => {
                bytes.remove(i);
            }
            2 => bytes.insert(i, byte),
            _ => bytes.truncate(i),
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(line in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = worker_decode(&line);
        let _ = broker_decode(1, &line);
    }

    #[test]
    fn mutated_frames_are_decoded_or_rejected_with_a_code(
        seed in 0usize..12,
        ops in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6),
    ) {
        let line = mutate(&seeds()[seed], &ops);
        if let Err(e) = worker_decode(&line) {
            prop_assert!(!e.code().is_empty());
        }
        match broker_decode(1, &line) {
            Decoded::Msg(WorkerMsg::BadFrame(_, e)) => prop_assert!(!e.code().is_empty()),
            Decoded::Output(..) | Decoded::Msg(WorkerMsg::Frame(_, _)) => {}
            Decoded::Msg(WorkerMsg::Closed(..)) => prop_assert!(false, "decode never closes"),
        }
    }

    #[test]
    fn codec_reassembles_lines_from_any_chunking(
        lines in proptest::collection::vec("[a-z{}\":,0-9]{0,40}", 1..20),
        cuts in proptest::collection::vec(1usize..30, 1..40),
    ) {
        let stream: Vec<u8> = lines.iter().flat_map(|l| format!("{l}\n").into_bytes()).collect();
        let mut codec = LineCodec::new(32);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut rest = &stream[..];
        for cut in cuts.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let n = (*cut).min(rest.len());
            buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            while let Some(line) = codec.decode(&mut buf).unwrap() {
                out.push(line);
            }
        }
        while let Some(line) = codec.decode_eof(&mut buf).unwrap() {
            out.push(line);
        }
        prop_assert_eq!(out.len(), lines.len());
        for (got, want) in out.iter().zip(&lines) {
            match got {
                Line::Frame(f) => prop_assert_eq!(&f[..], want.as_bytes()),
                Line::TooLong(n) => prop_assert!(want.len() > 32 && *n >= want.len().min(33)),
            }
        }
    }
}
