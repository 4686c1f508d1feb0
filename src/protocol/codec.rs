//! Splitting a byte stream into NDJSON frames, with a length limit that costs one frame,
//! not the connection.
//!
//! tokio-util's line codecs end the stream after an over-long line; one bad frame from (or
//! to) a worker would then cut the worker off. Here an over-long line is reported as
//! [`Line::TooLong`], its bytes are dropped as they arrive (never buffered whole), and
//! decoding resumes after its newline.

use bytes::{Buf, BytesMut};
use tokio_util::codec::Decoder;

#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// One frame, without its newline.
    Frame(BytesMut),
    /// A line longer than the limit was skipped; this many bytes were dropped.
    TooLong(usize),
}

pub struct LineCodec {
    max: usize,
    /// Bytes of an over-long line dropped so far, while waiting for its newline.
    discarding: Option<usize>,
    /// How far the buffer has been searched for a newline already.
    scanned: usize,
}

impl LineCodec {
    pub fn new(max: usize) -> Self {
        LineCodec {
            max,
            discarding: None,
            scanned: 0,
        }
    }
}

impl Decoder for LineCodec {
    type Item = Line;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Line>, Self::Error> {
        match memchr::memchr(b'\n', &buf[self.scanned..]) {
            Some(i) => {
                let end = self.scanned + i;
                self.scanned = 0;
                if let Some(dropped) = self.discarding.take() {
                    buf.advance(end + 1);
                    return Ok(Some(Line::TooLong(dropped + end)));
                }
                let mut line = buf.split_to(end + 1);
                line.truncate(end);
                if line.len() > self.max {
                    return Ok(Some(Line::TooLong(line.len())));
                }
                Ok(Some(Line::Frame(line)))
            }
            None => {
                if let Some(dropped) = &mut self.discarding {
                    *dropped += buf.len();
                    buf.clear();
                    self.scanned = 0;
                } else if buf.len() > self.max {
                    self.discarding = Some(buf.len());
                    buf.clear();
                    self.scanned = 0;
                } else {
                    self.scanned = buf.len();
                }
                Ok(None)
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Line>, Self::Error> {
        if let Some(line) = self.decode(buf)? {
            return Ok(Some(line));
        }
        // A last frame without its newline still counts.
        self.scanned = 0;
        match self.discarding.take() {
            Some(dropped) => Ok(Some(Line::TooLong(dropped + buf.len()))).inspect(|_| buf.clear()),
            None if buf.is_empty() => Ok(None),
            None => Ok(Some(Line::Frame(buf.split()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(codec: &mut LineCodec, chunks: &[&[u8]]) -> Vec<Line> {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for c in chunks {
            buf.extend_from_slice(c);
            while let Some(line) = codec.decode(&mut buf).unwrap() {
                out.push(line);
            }
        }
        while let Some(line) = codec.decode_eof(&mut buf).unwrap() {
            out.push(line);
        }
        out
    }

    #[test]
    fn splits_across_chunks_and_survives_an_over_long_line() {
        let mut codec = LineCodec::new(8);
        let lines = decode_all(
            &mut codec,
            &[b"ab\ncd", b"ef\n0123456789", b"abcdef\nok\nlast"],
        );
        assert_eq!(
            lines,
            vec![
                Line::Frame(BytesMut::from(&b"ab"[..])),
                Line::Frame(BytesMut::from(&b"cdef"[..])),
                Line::TooLong(16),
                Line::Frame(BytesMut::from(&b"ok"[..])),
                Line::Frame(BytesMut::from(&b"last"[..])),
            ]
        );
    }
}
