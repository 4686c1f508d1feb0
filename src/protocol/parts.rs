//! A frame too long for one line (over [`super::MAX_FRAME_BYTES`]) — a snapshot of a huge,
//! busy screen — travels as consecutive `part` frames, each carrying the next piece of the
//! frame's line:
//!
//! ```text
//! {"v":1,"type":"part","payload":{"data_b64":"…","last":false}}
//! …
//! {"v":1,"type":"part","payload":{"data_b64":"…","last":true}}
//! ```
//!
//! The receiver joins the pieces and decodes the result as the frame it is. Nothing else is
//! sent between the parts of one frame (one writer), and a frame is never split unless it must
//! be. Joined frames are capped at [`MAX_JOINED_BYTES`].

use serde::{Deserialize, Serialize};

use super::{DecodeError, Envelope, decode_payload};

pub const PART: &str = "part";
/// Bytes of the frame's line per part (base64 makes a part line a third longer).
pub const PART_BYTES: usize = 2 * 1024 * 1024;
/// The longest frame that may travel in parts.
pub const MAX_JOINED_BYTES: usize = 128 * 1024 * 1024;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartPayload {
    data_b64: String,
    last: bool,
}

/// The part lines (each ending in a newline) that carry `line` (its newline excluded).
pub fn split(line: &[u8]) -> Vec<Vec<u8>> {
    let pieces: Vec<&[u8]> = line.chunks(PART_BYTES).collect();
    let n = pieces.len();
    pieces
        .into_iter()
        .enumerate()
        .map(|(i, piece)| {
            let payload = PartPayload {
                data_b64: crate::b64::encode(piece),
                last: i + 1 == n,
            };
            Envelope::new(
                PART,
                None,
                serde_json::to_value(payload).expect("serializes"),
            )
            .to_line()
        })
        .collect()
}

/// Joins part frames back into the frame they carry.
#[derive(Default)]
pub struct Joiner {
    line: Vec<u8>,
}

impl Joiner {
    /// Takes one `part` frame; returns the whole line once its last part is in.
    pub fn push(&mut self, env: &Envelope) -> Result<Option<Vec<u8>>, DecodeError> {
        let part: PartPayload = decode_payload(env)?;
        let piece = crate::b64::decode(&part.data_b64).map_err(|e| DecodeError::BadPayload {
            kind: PART.into(),
            message: e.to_string(),
        })?;
        if self.line.len() + piece.len() > MAX_JOINED_BYTES {
            self.line = Vec::new();
            return Err(DecodeError::TooLarge(MAX_JOINED_BYTES + 1));
        }
        self.line.extend_from_slice(&piece);
        Ok(part.last.then(|| std::mem::take(&mut self.line)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_frame_comes_back_whole_from_its_parts() {
        let env = Envelope::new(
            "response",
            Some("r1".into()),
            serde_json::json!({"screen": "é".repeat(3 * PART_BYTES / 4)}),
        );
        let mut line = env.to_line();
        line.pop();
        let parts = split(&line);
        assert_eq!(parts.len(), 2);
        assert!(
            parts
                .iter()
                .all(|p| p.len() < super::super::MAX_FRAME_BYTES)
        );
        let mut joiner = Joiner::default();
        let mut whole = None;
        for p in &parts {
            let part = super::super::decode_envelope(&p[..p.len() - 1]).unwrap();
            whole = joiner.push(&part).unwrap();
        }
        assert_eq!(super::super::decode_envelope(&whole.unwrap()).unwrap(), env);
    }
}
