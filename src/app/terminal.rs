//! The terminal the TUI draws on: raw mode and the alternate screen for as long as it runs
//! (restored on drop, on panic and on every killing signal), and its input on a thread.

use std::io::Stdout;

use crossterm::event::{self as term, Event as TermEvent};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::sync::mpsc;

/// Raw mode, alternate screen, mouse and bracketed paste on; all restored on drop and on
/// panic (the hook runs before color-eyre's report is printed).
pub(super) struct TerminalGuard {
    pub(super) terminal: Terminal<CrosstermBackend<Stdout>>,
}

/// Writes sequences meant for the outer terminal itself (a bell, a notification, a clipboard
/// copy, the cursor's shape) around ratatui's frames; a failed write only loses them.
pub(super) fn write_to_outer(bytes: &[u8]) {
    use std::io::Write;
    if bytes.is_empty() {
        return;
    }
    let mut stdout = std::io::stdout();
    let _ = stdout.write_all(bytes).and_then(|_| stdout.flush());
}

fn restore_terminal() {
    let _ = crossterm::terminal::disable_raw_mode();
    let _ = crossterm::execute!(
        std::io::stdout(),
        term::DisableBracketedPaste,
        term::DisableMouseCapture,
        crossterm::terminal::LeaveAlternateScreen,
        crossterm::cursor::SetCursorStyle::DefaultUserShape,
        crossterm::cursor::Show
    );
}

/// The outer terminal's default colours (OSC 10 / 11), asked once before the TUI takes the
/// terminal over, so panes can tell programs that ask; `None` when it does not say.
pub(super) fn outer_colors() -> Option<crate::protocol::worker_args::TerminalColors> {
    let mut options = terminal_colorsaurus::QueryOptions::default();
    options.timeout = std::time::Duration::from_millis(500);
    let palette = terminal_colorsaurus::color_palette(options).ok()?;
    let rgb = |c: terminal_colorsaurus::Color| [c.r, c.g, c.b];
    Some(crate::protocol::worker_args::TerminalColors {
        foreground: rgb(palette.foreground),
        background: rgb(palette.background),
    })
}

impl TerminalGuard {
    pub(super) fn enter() -> color_eyre::Result<Self> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            previous(info);
        }));
        crossterm::terminal::enable_raw_mode()?;
        crossterm::execute!(
            std::io::stdout(),
            crossterm::terminal::EnterAlternateScreen,
            term::EnableMouseCapture,
            term::EnableBracketedPaste
        )?;
        let terminal = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
        Ok(TerminalGuard { terminal })
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Reads terminal events on a thread of its own (crossterm's read blocks).
pub(super) fn spawn_terminal_reader() -> mpsc::Receiver<TermEvent> {
    let (tx, rx) = mpsc::channel(256);
    std::thread::Builder::new()
        .name("terminal-input".into())
        .spawn(move || {
            // Keys are what the front process answers first (config `priority`).
            crate::sched::front_thread();
            while let Ok(ev) = term::read() {
                if tx.blocking_send(ev).is_err() {
                    break;
                }
            }
        })
        .expect("spawn terminal reader");
    rx
}

/// Every signal whose default action would kill the TUI, caught: whichever comes, the TUI
/// ends by the orderly path (terminal restored, workers ended), never with the terminal left
/// raw. Installed before anything else, so no moment of start-up is uncovered.
pub(super) struct Signals {
    caught: Vec<tokio::signal::unix::Signal>,
}

impl Signals {
    pub(super) fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        let kinds = [
            SignalKind::terminate(),
            SignalKind::hangup(),
            SignalKind::interrupt(),
            SignalKind::quit(),
            SignalKind::user_defined1(),
            SignalKind::user_defined2(),
            SignalKind::alarm(),
        ];
        let caught = kinds.into_iter().map(signal).collect::<Result<_, _>>()?;
        Ok(Signals { caught })
    }

    /// Resolves when any of them arrives.
    pub(super) async fn recv(&mut self) {
        let all = self.caught.iter_mut().map(|s| Box::pin(s.recv()));
        futures_util::future::select_all(all).await;
    }
}
