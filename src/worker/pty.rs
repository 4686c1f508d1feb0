//! The worker's PTY: spawning the child, and the threads that read its output, write its
//! input and wait for it.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use color_eyre::eyre::{WrapErr, eyre};
use portable_pty::{CommandBuilder, MasterPty, PtySize, native_pty_system};
use tokio::sync::{mpsc, oneshot};

use super::session::{PtySink, WRITE_QUEUE_BYTES};
use crate::protocol::ExitedPayload;
use crate::teardown::session::signal_name;

/// Chunks buffered between the reader thread and the loop. Small on purpose: when the
/// broker cannot keep up, the reader blocks and the child blocks on its writes.
const OUTPUT_CHANNEL: usize = 4;

/// Variables of an outer multiplexer that must not leak into a pane.
const OUTER_MULTIPLEXER_VARS: &[&str] = &[
    "TMUX",
    "TMUX_PANE",
    "STY",
    "WINDOW",
    "TERM_PROGRAM",
    "TERM_PROGRAM_VERSION",
];

pub struct Pty {
    pub pid: i32,
    master: Box<dyn MasterPty + Send>,
    writer_tx: std::sync::mpsc::Sender<Vec<u8>>,
    /// Bytes handed to the writer thread and not yet written.
    writer_queued: Arc<AtomicUsize>,
    pub output: mpsc::Receiver<Vec<u8>>,
    pub exit: oneshot::Receiver<ExitedPayload>,
}

impl Pty {
    pub fn spawn(
        cmd: &[String],
        cwd: Option<&Path>,
        rows: u16,
        cols: u16,
        term: &str,
    ) -> color_eyre::Result<Pty> {
        let (program, args) = cmd.split_first().ok_or_else(|| eyre!("empty command"))?;
        runnable(program, cwd)?;
        let pair = native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .map_err(|e| eyre!("openpty: {e}"))?;
        let mut builder = CommandBuilder::new(program);
        builder.args(args);
        // The terminal a program talks to is brokertui's emulation, whatever the outer
        // terminal is: its TERM must describe what the pane decodes and what the TUI's keys
        // encode (an inherited `tmux-256color` makes Home/End junk in vim and less).
        builder.env("TERM", term);
        builder.env("COLORTERM", "truecolor");
        // A program in a pane must not think it runs inside the outer multiplexer (`tmux` in a
        // pane would drive the outer server; agents print hints about its features).
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if OUTER_MULTIPLEXER_VARS.contains(&key.as_ref()) || key.starts_with("ZELLIJ") {
                builder.env_remove(key.as_ref());
            }
        }
        // portable-pty defaults to $HOME; a worker runs where it was started unless told.
        let dir = match cwd {
            Some(dir) => dir.to_path_buf(),
            None => std::env::current_dir().wrap_err("current directory")?,
        };
        // portable-pty would quietly start the program in $HOME instead.
        if !dir.is_dir() {
            return Err(eyre!(
                "the working directory {} does not exist (or is not a directory)",
                dir.display()
            ));
        }
        builder.cwd(dir);
        let child = pair
            .slave
            .spawn_command(builder)
            .map_err(|e| eyre!("{e}"))?;
        // Our copy of the slave must go, or the reader never sees EOF.
        drop(pair.slave);
        let pid = child
            .process_id()
            .ok_or_else(|| eyre!("child has no pid"))? as i32;
        // We reap the child ourselves (waitpid gives the raw signal number).
        drop(child);

        let fd = pair
            .master
            .as_raw_fd()
            .ok_or_else(|| eyre!("the PTY master has no file descriptor"))?;
        // SAFETY: `fd` is the master's descriptor and `pair.master` is alive for this
        // statement; the borrow only lives long enough to dup it.
        let master_fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let reader = std::fs::File::from(master_fd.try_clone_to_owned()?);
        let (out_tx, output) = mpsc::channel(OUTPUT_CHANNEL);
        super::pty_reader::spawn(reader, out_tx)?;

        let mut writer = pair.master.take_writer().map_err(|e| eyre!("{e}"))?;
        let (writer_tx, writer_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let writer_queued = Arc::new(AtomicUsize::new(0));
        let queued = writer_queued.clone();
        std::thread::Builder::new()
            .name("pty-writer".into())
            .spawn(move || {
                while let Ok(bytes) = writer_rx.recv() {
                    let result = writer.write_all(&bytes).and_then(|_| writer.flush());
                    queued.fetch_sub(bytes.len(), Ordering::Relaxed);
                    if let Err(e) = result {
                        tracing::warn!("PTY write failed: {e}");
                        break;
                    }
                }
            })?;

        let (exit_tx, exit) = oneshot::channel();
        std::thread::Builder::new()
            .name("child-waiter".into())
            .spawn(move || {
                use nix::sys::wait::{WaitStatus, waitpid};
                let status = loop {
                    match waitpid(nix::unistd::Pid::from_raw(pid), None) {
                        Ok(WaitStatus::Exited(_, code)) => {
                            break ExitedPayload {
                                code: Some(code),
                                signal: None,
                            };
                        }
                        Ok(WaitStatus::Signaled(_, sig, _)) => {
                            break ExitedPayload {
                                code: None,
                                signal: Some(signal_name(sig as i32)),
                            };
                        }
                        Ok(_) => continue,
                        Err(nix::errno::Errno::EINTR) => continue,
                        Err(_) => break ExitedPayload::default(),
                    }
                };
                let _ = exit_tx.send(status);
            })?;

        Ok(Pty {
            pid,
            master: pair.master,
            writer_tx,
            writer_queued,
            output,
            exit,
        })
    }

    pub fn resize(&self, rows: u16, cols: u16) -> color_eyre::Result<()> {
        self.master
            .resize(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .map_err(|e| eyre!("{e}"))
    }

    /// Who has the terminal: the program we started, or another process group (a shell's
    /// foreground job, named by its `comm`).
    pub fn foreground(&self) -> super::agent::Foreground {
        use super::agent::Foreground;
        let Some(fd) = self.master.as_raw_fd() else {
            return Foreground::Unknown;
        };
        // SAFETY: tcgetpgrp only reads the terminal's foreground process group of a
        // descriptor we own for as long as `self.master` lives.
        let pgrp = unsafe { libc::tcgetpgrp(fd) };
        if pgrp <= 0 {
            Foreground::Unknown
        } else if pgrp == self.pid {
            Foreground::Child
        } else {
            let name = std::fs::read_to_string(format!("/proc/{pgrp}/comm"))
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| format!("process group {pgrp}"));
            Foreground::Job(name)
        }
    }

    /// Whether the terminal is in canonical (line-by-line) mode, as a program that reads
    /// lines (`cat`, `read`) leaves it and a line editor does not.
    pub fn canonical(&self) -> bool {
        let Some(fd) = self.master.as_raw_fd() else {
            return false;
        };
        // SAFETY: tcgetattr fills a zeroed termios for a descriptor we own while
        // `self.master` lives; on Linux the master reports the terminal's settings.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        unsafe { libc::tcgetattr(fd, &mut t) == 0 && t.c_lflag & libc::ICANON != 0 }
    }

    /// Bytes typed into the terminal that the program has not read yet (`None` if that cannot
    /// be told). Opens the terminal's own side just for the question: kept open, it would
    /// hide the child's exit from the reader.
    pub fn unread_input(&self) -> Option<usize> {
        use std::os::fd::AsRawFd;
        let path = self.master.tty_name()?;
        let tty = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
            .open(path)
            .ok()?;
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int for a descriptor we hold open.
        let r = unsafe { libc::ioctl(tty.as_raw_fd(), libc::FIONREAD, &mut n) };
        (r == 0).then_some(n.max(0) as usize)
    }

    /// The sink the session writes through (input and injections share one writer thread,
    /// so their bytes reach the PTY in the order they were written).
    pub fn writer(&self) -> PtyWriter {
        PtyWriter {
            tx: self.writer_tx.clone(),
            queued: self.writer_queued.clone(),
        }
    }
}

pub struct PtyWriter {
    tx: std::sync::mpsc::Sender<Vec<u8>>,
    queued: Arc<AtomicUsize>,
}

impl PtySink for PtyWriter {
    fn write(&mut self, bytes: Vec<u8>) -> Result<(), String> {
        let waiting = self.queued.load(Ordering::Relaxed);
        if waiting + bytes.len() > WRITE_QUEUE_BYTES {
            return Err(format!(
                "the program is not reading its terminal ({waiting} bytes of input already wait); {} bytes were refused",
                bytes.len()
            ));
        }
        self.queued.fetch_add(bytes.len(), Ordering::Relaxed);
        let len = bytes.len();
        self.tx.send(bytes).map_err(|_| {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            "the PTY writer has stopped (the child closed its terminal)".to_string()
        })
    }
}

/// Why `program` cannot be run, in the words a user needs: not found (on `PATH`, or at the
/// path given), or not executable. (portable-pty's own message names its internals.)
fn runnable(program: &str, cwd: Option<&Path>) -> color_eyre::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let path = match cwd {
            Some(dir) if Path::new(program).is_relative() => dir.join(program),
            _ => Path::new(program).to_path_buf(),
        };
        return match std::fs::metadata(&path) {
            Err(_) => Err(eyre!("no such command: {program}")),
            Ok(_) if !executable(&path) => {
                Err(eyre!("cannot run {program}: it is not an executable file"))
            }
            Ok(_) => Ok(()),
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    if std::env::split_paths(&path).any(|dir| executable(&dir.join(program))) {
        Ok(())
    } else {
        Err(eyre!("no such command: {program} (not found on PATH)"))
    }
}
