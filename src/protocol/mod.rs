//! The worker wire protocol: newline-delimited JSON frames between the broker and a
//! `brokertui worker` process (docs/architecture.md, "The wire").
//!
//! # Format
//!
//! Every frame, in both directions, is one line:
//!
//! ```text
//! {"v":1,"type":"<snake_case>","request_id":"<optional>","payload":{...}}
//! ```
//!
//! Frames are decoded in two steps: first the [`Envelope`] (so a frame with a good envelope
//! but a bad payload can still be answered with its `request_id`), then the payload by `type`.
//! The typed payloads of the request kinds live in [`requests`], one file per kind.

pub mod codec;
mod frames;
#[cfg(test)]
mod fuzz_tests;
pub mod inject_record;
pub mod parts;
pub mod requests;
pub mod worker_args;

pub use frames::*;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Protocol version carried in every envelope and in the worker's `ready` frame.
pub const PROTOCOL_VERSION: u32 = 1;

/// The outer shape of every frame.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Envelope {
    pub v: u32,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default)]
    pub payload: Value,
}

impl Envelope {
    pub fn new(kind: &str, request_id: Option<String>, payload: Value) -> Self {
        Envelope {
            v: PROTOCOL_VERSION,
            kind: kind.to_string(),
            request_id,
            payload,
        }
    }

    /// Encodes the envelope as one NDJSON line, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).expect("envelope always serializes");
        line.push(b'\n');
        line
    }
}

/// Why a line could not be decoded into a frame; carried in `worker_error` frames and alerts.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum DecodeError {
    #[error("frame is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("unsupported protocol version {0} (expected {PROTOCOL_VERSION})")]
    BadVersion(u32),
    #[error("unknown frame type {0:?}")]
    UnknownType(String),
    #[error("bad payload for {kind:?}: {message}")]
    BadPayload { kind: String, message: String },
    #[error("frame of {0} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")]
    TooLarge(usize),
}

impl DecodeError {
    /// The machine-readable code used in `worker_error` frames.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::InvalidJson(_) => "invalid_json",
            DecodeError::BadVersion(_) => "bad_version",
            DecodeError::UnknownType(_) => "unknown_type",
            DecodeError::BadPayload { .. } => "bad_payload",
            DecodeError::TooLarge(_) => "frame_too_large",
        }
    }
}

/// Longest frame either side accepts. Output chunks are at most 64 KiB of PTY bytes
/// (~88 KiB of base64), and a relay message body is capped well below this.
pub const MAX_FRAME_BYTES: usize = 4 * 1024 * 1024;

/// Largest screen side either end accepts: a screen's memory and every full redraw grow with
/// rows × cols, so the wire refuses what the API refuses.
pub const MAX_DIMENSION: u16 = 1000;

/// Checks one screen side against `1..=MAX_DIMENSION`.
pub fn check_dimension(what: &str, n: u16) -> Result<u16, String> {
    if (1..=MAX_DIMENSION).contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "{what} must be between 1 and {MAX_DIMENSION}, got {n}"
        ))
    }
}

/// Decodes one line into an envelope, checking the version.
pub fn decode_envelope(line: &[u8]) -> Result<Envelope, DecodeError> {
    decode_envelope_within(line, MAX_FRAME_BYTES)
}

/// [`decode_envelope`] for a frame that may be up to `limit` bytes (one joined from parts).
pub fn decode_envelope_within(line: &[u8], limit: usize) -> Result<Envelope, DecodeError> {
    if line.len() > limit {
        return Err(DecodeError::TooLarge(line.len()));
    }
    let env: Envelope =
        serde_json::from_slice(line).map_err(|e| DecodeError::InvalidJson(e.to_string()))?;
    if env.v != PROTOCOL_VERSION {
        return Err(DecodeError::BadVersion(env.v));
    }
    Ok(env)
}

/// Decodes an envelope's payload into `T`, naming the frame type in the error.
pub fn decode_payload<T: serde::de::DeserializeOwned>(env: &Envelope) -> Result<T, DecodeError> {
    T::deserialize(&env.payload).map_err(|e| DecodeError::BadPayload {
        kind: env.kind.clone(),
        message: e.to_string(),
    })
}

/// A `{"code","message"}` error as carried in responses and `worker_error` frames.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorBody {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// Milliseconds since the Unix epoch, the timestamp unit of every payload.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A `response` frame answering `request_id` with `ok`.
pub fn response_ok(request_id: &str, kind: &str, ok: Value) -> Envelope {
    response(request_id, kind, Some(ok), None)
}

/// A `response` frame answering `request_id` with an error.
pub fn response_err(request_id: &str, kind: &str, error: ErrorBody) -> Envelope {
    response(request_id, kind, None, Some(error))
}

fn response(request_id: &str, kind: &str, ok: Option<Value>, error: Option<ErrorBody>) -> Envelope {
    let payload = ResponsePayload {
        kind: kind.to_string(),
        ok,
        error,
    };
    Envelope::new(
        from_worker::RESPONSE,
        Some(request_id.to_string()),
        serde_json::to_value(payload).expect("response serializes"),
    )
}

/// An unsolicited frame with a serializable payload.
pub fn frame<T: Serialize>(kind: &str, payload: &T) -> Envelope {
    Envelope::new(
        kind,
        None,
        serde_json::to_value(payload).expect("payload serializes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trips_and_omits_missing_request_id() {
        let env = Envelope::new("get_mode", None, serde_json::json!({}));
        let line = env.to_line();
        assert_eq!(
            std::str::from_utf8(&line).unwrap(),
            "{\"v\":1,\"type\":\"get_mode\",\"payload\":{}}\n"
        );
        assert_eq!(decode_envelope(&line[..line.len() - 1]).unwrap(), env);
    }

    #[test]
    fn decode_rejects_garbage_with_specific_codes() {
        assert_eq!(
            decode_envelope(b"{nope").unwrap_err().code(),
            "invalid_json"
        );
        assert_eq!(
            decode_envelope(br#"{"v":2,"type":"x","payload":{}}"#)
                .unwrap_err()
                .code(),
            "bad_version"
        );
        assert_eq!(
            decode_envelope(br#"{"type":"x"}"#).unwrap_err().code(),
            "invalid_json"
        );
    }
}
