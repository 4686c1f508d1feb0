//! Reading the child's output: one thread, under `SCHED_BATCH` like the parser. Reading
//! output is throughput work: on a machine with CPU to spare it runs at once, but its
//! wake-ups never preempt a thread that answers people. It keeps its full share of the CPU,
//! so a flood is not starved by other work either.
//!
//! It hands chunks to the worker's loop over a small bounded channel. When the loop stops
//! taking them — out of the broker's credit ([`super::flow`]) or with its parser behind —
//! the channel fills, this thread blocks, the PTY fills and the child blocks on its writes.

use std::fs::File;
use std::io::Read;

use tokio::sync::mpsc;

/// Bytes read from the PTY per read call.
const READ_CHUNK: usize = 64 * 1024;

/// Starts the reader; the channel closes when the PTY does (or nobody takes the output).
pub fn spawn(mut reader: File, out: mpsc::Sender<Vec<u8>>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("pty-reader".into())
        .spawn(move || {
            crate::sched::throughput_thread();
            let mut buf = vec![0u8; READ_CHUNK];
            loop {
                let n = match reader.read(&mut buf) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if out.blocking_send(buf[..n].to_vec()).is_err() {
                    return;
                }
            }
        })
        .map(drop)
}
