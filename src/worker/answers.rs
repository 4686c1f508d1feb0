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
//! | DECRQM `CSI ? Ps $ p` | `CSI ? Ps ; Pm $ y`: 1 set, 2 reset, 0 for a mode the pane does not know (2026, synchronized output, is known) |
//! | OSC 10 / 11 / 12 `;?` | the outer terminal's default foreground, background and cursor colours, `rgb:rrrr/gggg/bbbb`, when known |
//! | XTGETTCAP `DCS + q hex ST` | `DCS 1 + r hex=hex ST` for the capabilities below, `DCS 0 + r hex ST` for others |
//!
//! The colours are the outer terminal's, when the TUI could ask it or the config's
//! `[terminal]` names them; unknown (`--serve` alone), the question goes unanswered, as in a
//! tmux with no client: a guess would tell a program on a light terminal it is dark.
//! XTGETTCAP knows `TN` (the pane's `TERM`), `Co`/`colors` (256) and `RGB` (8 bits each).
//!
//! The kitty keyboard query (`CSI ? u`) is left unanswered on purpose: the pane does not speak
//! that protocol, and a program that asks follows with DA1, whose answer tells it so.

use crate::pane_modes::PaneModes;

/// Collects the answers while the parser runs (the worker writes them to the PTY), and the
/// modes the screen does not keep (a snapshot carries them).
#[derive(Default)]
pub struct Answers {
    pending: Vec<u8>,
    pub modes: PaneModes,
    /// What OSC 10 / 11 / 12 answer (the cursor is the text's colour).
    colors: Option<crate::protocol::worker_args::TerminalColors>,
}

impl Answers {
    pub fn with_colors(colors: Option<crate::protocol::worker_args::TerminalColors>) -> Self {
        Answers {
            colors,
            ..Answers::default()
        }
    }

    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pending)
    }
}

/// XTGETTCAP: the value of one capability (by its terminfo name), if the pane has it.
fn capability(name: &str) -> Option<&'static str> {
    match name {
        "TN" | "name" => Some(crate::protocol::worker_args::DEFAULT_TERM),
        "Co" | "colors" => Some("256"),
        "RGB" => Some("8"),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn unhex(s: &[u8]) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = s
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
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
                let state = self
                    .modes
                    .private_mode(mode)
                    .unwrap_or_else(|| private_mode(screen, mode));
                format!("\x1b[?{mode};{state}$y").into_bytes()
            }
            _ => {
                self.modes.csi(i1, i2, params, c);
                return;
            }
        };
        self.pending.extend_from_slice(&answer);
    }

    fn set_window_title(&mut self, _: &mut vt100::Screen, title: &[u8]) {
        self.modes.set_title(title);
    }

    fn unhandled_osc(&mut self, _: &mut vt100::Screen, params: &[&[u8]]) {
        use crate::protocol::worker_args::TerminalColors;
        let Some(colors) = self.colors else { return };
        let colour = match params {
            [b"10", b"?"] => ("10", colors.foreground),
            [b"11", b"?"] => ("11", colors.background),
            [b"12", b"?"] => ("12", colors.foreground),
            _ => return,
        };
        let answer = format!("\x1b]{};{}\x1b\\", colour.0, TerminalColors::x11(colour.1));
        self.pending.extend_from_slice(answer.as_bytes());
    }

    fn dcs(&mut self, _: &mut vt100::Screen, intermediates: &[u8], action: char, data: &[u8]) {
        if intermediates != b"+" || action != 'q' {
            return;
        }
        for name in data.split(|b| *b == b';') {
            let asked = String::from_utf8_lossy(name).to_ascii_uppercase();
            let answer = match unhex(name).as_deref().and_then(capability) {
                Some(value) => format!("\x1bP1+r{asked}={}\x1b\\", hex(value.as_bytes())),
                None => format!("\x1bP0+r{asked}\x1b\\"),
            };
            self.pending.extend_from_slice(answer.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(stream: &[u8]) -> Vec<u8> {
        answers_with(stream, None)
    }

    fn answers_with(
        stream: &[u8],
        colors: Option<crate::protocol::worker_args::TerminalColors>,
    ) -> Vec<u8> {
        let mut p = vt100::Parser::new_with_callbacks(24, 80, 0, Answers::with_colors(colors));
        p.process(stream);
        p.callbacks_mut().take()
    }

    /// The colours are the outer terminal's; unknown, nothing is made up.
    #[test]
    fn colour_queries_get_the_outer_terminals_colours_or_no_answer() {
        use crate::protocol::worker_args::TerminalColors;
        let light = TerminalColors::from_hex("#101010", "#fafafa").unwrap();
        assert_eq!(
            answers_with(b"\x1b]10;?\x07\x1b]11;?\x1b\\\x1b]12;?\x07", Some(light)),
            b"\x1b]10;rgb:1010/1010/1010\x1b\\\x1b]11;rgb:fafa/fafa/fafa\x1b\\\x1b]12;rgb:1010/1010/1010\x1b\\"
        );
        assert_eq!(answers(b"\x1b]10;?\x07\x1b]11;?\x1b\\"), b"");
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
        assert_eq!(
            answers(b"\x1b[?2026$p\x1b[?2026h\x1b[?2026$p\x1b[?1004$p"),
            b"\x1b[?2026;2$y\x1b[?2026;1$y\x1b[?1004;2$y"
        );
        // XTGETTCAP for TN and an unknown capability, in one query.
        assert_eq!(
            answers(b"\x1bP+q544E;7A7A\x1b\\"),
            b"\x1bP1+r544E=787465726D2D323536636F6C6F72\x1b\\\x1bP0+r7A7A\x1b\\"
        );
        assert_eq!(answers(b"plain text \x1b[31m colour"), b"");
    }
}
