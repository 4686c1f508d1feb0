//! Reading the child's output: one thread, under `SCHED_BATCH` like the parser. Reading
//! output is throughput work: on a machine with CPU to spare it runs at once, but its
//! wake-ups never preempt a thread that answers people. It keeps its full share of the CPU,
//! so a flood is not starved by other work either.
//!
//! It hands chunks to the worker's loop over a small bounded channel. When the loop stops
//! taking them — out of the broker's credit ([`super::flow`]) or with its parser behind —
//! the channel fills, this thread blocks, the PTY fills and the child blocks on its writes.
//!
//! A PTY hands out a flood a few KiB per read. Each chunk costs the loop, the parser and
//! the broker a wake-up and a frame, so after a read this thread takes whatever else is
//! already waiting (a poll that never waits) before handing the chunk on: a flood travels
//! in large chunks, and a keystroke's echo leaves as soon as it is read.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsFd;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use tokio::sync::mpsc;

/// Most bytes handed on as one chunk.
const READ_CHUNK: usize = 64 * 1024;

/// Starts the reader; the channel closes when the PTY does (or nobody takes the output).
pub fn spawn(mut reader: File, out: mpsc::Sender<Vec<u8>>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("pty-reader".into())
        .spawn(move || {
            crate::sched::throughput_thread();
            let mut buf = vec![0u8; READ_CHUNK];
            loop {
                let Some(n) = read_available(&mut reader, &mut buf) else {
                    return;
                };
                if out.blocking_send(buf[..n].to_vec()).is_err() {
                    return;
                }
            }
        })
        .map(drop)
}

/// One blocking read, then more while output is already waiting and `buf` has room.
/// `None` once the PTY has closed (or failed) with nothing read.
fn read_available(reader: &mut File, buf: &mut [u8]) -> Option<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        if filled > 0 && !readable_now(reader) {
            break;
        }
        match reader.read(&mut buf[filled..]) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Ok(0) | Err(_) => break,
            Ok(n) => filled += n,
        }
    }
    (filled > 0).then_some(filled)
}

/// Whether a read would return at once (output waiting, or the PTY closed).
fn readable_now(reader: &File) -> bool {
    let mut fds = [PollFd::new(reader.as_fd(), PollFlags::POLLIN)];
    poll(&mut fds, PollTimeout::ZERO).is_ok_and(|n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::{Duration, Instant};

    use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};

    /// A raw PTY pair: (master to read, slave to write as the child would).
    fn pty() -> (File, File) {
        let pair = nix::pty::openpty(None, None).expect("openpty");
        let mut t = tcgetattr(&pair.slave).expect("tcgetattr");
        cfmakeraw(&mut t);
        tcsetattr(&pair.slave, SetArg::TCSANOW, &t).expect("tcsetattr");
        (File::from(pair.master), File::from(pair.slave))
    }

    /// A flood arrives whole and in order however it is cut; a keystroke's echo comes
    /// back at once (nothing is waited for); a closed PTY ends the reader.
    #[test]
    fn a_flood_arrives_whole_and_an_echo_never_waits() {
        let (mut master, mut slave) = pty();
        let flood: Vec<u8> = (0..256 * 1024u32).map(|i| b'a' + (i % 26) as u8).collect();
        let expected = flood.clone();
        let writer = std::thread::spawn(move || {
            slave.write_all(&flood).expect("write");
            slave
        });
        let mut buf = vec![0u8; READ_CHUNK];
        let mut got = Vec::new();
        while got.len() < expected.len() {
            let n = read_available(&mut master, &mut buf).expect("open");
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got == expected, "bytes lost or reordered");

        let mut slave = writer.join().expect("writer");
        slave.write_all(b"e").expect("write");
        let t = Instant::now();
        assert_eq!(read_available(&mut master, &mut buf), Some(1));
        assert!(t.elapsed() < Duration::from_secs(1));
        drop(slave);
        assert_eq!(read_available(&mut master, &mut buf), None, "closed");
    }
}
