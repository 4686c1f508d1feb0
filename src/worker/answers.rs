//! Answers to the questions a program asks its terminal, given at once from the worker's own
//! screen — as tmux does — so a program that waits for one (crossterm's `cursor::position()`,
//! line editors asking where the cursor is, agents probing what the terminal supports) never
//! hangs in a pane:
//!
//! | query | answer |
//! |---|---|
//! | DA1 `CSI c`, `CSI 0 c` | `CSI ? 62 ; 22 c` (a VT220 with ANSI colour) |
//! | DA2 `CSI > c` | `CSI > 0 ; 0 ; 0 c` |
//! | DSR 5 `CSI 5 n` | `CSI 0 n` (ready) |
//! | DSR 6 `CSI 6 n` | `CSI row ; col R`, the cursor where the query was parsed |
//! | XTVERSION `CSI > q` | `DCS > \| brokertui <version> ST` |
//! | DECRQM `CSI ? Ps $ p` | `CSI ? Ps ; Pm $ y`: 1 set, 2 reset, 0 for a mode the pane does not know |
//!
//! The kitty keyboard query (`CSI ? u`) is left unanswered on purpose: the pane does not speak
//! that protocol, and a program that asks follows with DA1, whose answer tells it so.

/// Collects the answers while the parser runs; the worker writes them to the PTY.
#[derive(Default)]
pub struct Answers {
    pending: Vec<u8>,
}

impl Answers {
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pending)
    }
}

/// DECRQM: whether a private mode is set, as 1 (set), 2 (reset) or 0 (not known here).
fn private_mode(screen: &vt100::Screen, mode: u16) -> u8 {
    use vt100::MouseProtocolMode as M;
    let on = |b: bool| if b { 1 } else { 2 };
    let mouse = screen.mouse_protocol_mode();
    match mode {
        1 => on(screen.application_cursor()),
        25 => on(!screen.hide_cursor()),
        47 | 1047 | 1049 => on(screen.alternate_screen()),
        1000 => on(mouse == M::PressRelease),
        1002 => on(mouse == M::ButtonMotion),
        1003 => on(mouse == M::AnyMotion),
        2004 => on(screen.bracketed_paste()),
        _ => 0,
    }
}

impl vt100::Callbacks for Answers {
    fn unhandled_csi(
        &mut self,
        screen: &mut vt100::Screen,
        i1: Option<u8>,
        i2: Option<u8>,
        params: &[&[u16]],
        c: char,
    ) {
        let first = params.first().and_then(|p| p.first()).copied().unwrap_or(0);
        let answer = match (i1, i2, c, first) {
            (None, None, 'c', 0) => b"\x1b[?62;22c".to_vec(),
            (Some(b'>'), None, 'c', 0) => b"\x1b[>0;0;0c".to_vec(),
            (None, None, 'n', 5) => b"\x1b[0n".to_vec(),
            (None, None, 'n', 6) => {
                let (row, col) = screen.cursor_position();
                format!("\x1b[{};{}R", row + 1, col + 1).into_bytes()
            }
            (Some(b'>'), None, 'q', 0) => {
                format!("\x1bP>|brokertui {}\x1b\\", env!("CARGO_PKG_VERSION")).into_bytes()
            }
            (Some(b'?'), Some(b'$'), 'p', mode) => {
                format!("\x1b[?{mode};{}$y", private_mode(screen, mode)).into_bytes()
            }
            _ => return,
        };
        self.pending.extend_from_slice(&answer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(stream: &[u8]) -> Vec<u8> {
        let mut p = vt100::Parser::new_with_callbacks(24, 80, 0, Answers::default());
        p.process(stream);
        p.callbacks_mut().take()
    }

    #[test]
    fn each_query_is_answered_from_the_screen_where_it_was_asked() {
        assert_eq!(answers(b"\x1b[3;7H\x1b[6nab\x1b[6n"), b"\x1b[3;7R\x1b[3;9R");
        assert_eq!(answers(b"\x1b[c\x1b[0c"), b"\x1b[?62;22c\x1b[?62;22c");
        assert_eq!(answers(b"\x1b[>c\x1b[5n"), b"\x1b[>0;0;0c\x1b[0n");
        assert!(answers(b"\x1b[>q").starts_with(b"\x1bP>|brokertui "));
        assert_eq!(
            answers(b"\x1b[?2004h\x1b[?2004$p\x1b[?1$p\x1b[?9999$p"),
            b"\x1b[?2004;1$y\x1b[?1;2$y\x1b[?9999;0$y"
        );
        assert_eq!(answers(b"\x1b[?u"), b"", "no kitty keyboard protocol here");
        assert_eq!(answers(b"plain text \x1b[31m colour"), b"");
    }
}
