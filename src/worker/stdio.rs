//! The worker's stdin and stdout, as pipes driven by the runtime's own reactor.
//!
//! `tokio::io::stdin()`/`stdout()` run every read and write on a blocking-pool thread (they
//! must work for any kind of file), which costs two extra thread hand-offs per request and
//! per response: a `get_mode` took ~2x as long as a `cat` echo through the same pipes. The
//! broker always connects a worker with pipes, so those are registered with epoll directly;
//! anything else (a terminal or a file, when someone runs `brokertui worker` by hand) falls
//! back to tokio's portable versions.

use std::os::fd::AsFd;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::unix::pipe;

pub type Input = Box<dyn AsyncRead + Unpin + Send>;
pub type Output = Box<dyn AsyncWrite + Unpin + Send>;

/// Stdin; non-blocking if it is a pipe (this sets `O_NONBLOCK` on it, which only we use).
pub fn input() -> Input {
    match std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .and_then(pipe::Receiver::from_owned_fd)
    {
        Ok(pipe) => Box::new(pipe),
        Err(_) => Box::new(tokio::io::stdin()),
    }
}

/// Stdout; non-blocking if it is a pipe.
pub fn output() -> Output {
    match std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .and_then(pipe::Sender::from_owned_fd)
    {
        Ok(pipe) => Box::new(pipe),
        Err(_) => Box::new(tokio::io::stdout()),
    }
}
