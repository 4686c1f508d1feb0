//! What a program sends for the human rather than for its screen: a bell (`BEL` outside any
//! escape string) and a desktop notification (`OSC 9 ; text`, `OSC 777 ; notify ; title ;
//! text`). The TUI passes both on to the outer terminal and flags the pane.
//!
//! A small byte scanner that survives sequences split across output chunks; everything else
//! the bytes mean is the vt100 parser's business.

/// Longest notification text kept (the rest is cut).
const MAX_TEXT: usize = 512;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    #[default]
    Ground,
    Escape,
    /// Inside an OSC string; `esc` when the last byte was ESC (a possible `ESC \` end).
    Osc {
        esc: bool,
    },
    /// Inside a DCS, APC, PM or SOS string (a BEL there is not a bell either).
    Str {
        esc: bool,
    },
}

/// What one chunk carried for the human.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Signals {
    pub bell: bool,
    pub notifications: Vec<String>,
    /// OSC 52 copies (`selection;base64`), to pass on to the outer terminal.
    pub clipboard: Vec<String>,
}

/// Longest OSC 52 copy passed on (base64 bytes); longer ones are dropped whole.
const MAX_CLIPBOARD: usize = 1024 * 1024;

#[derive(Debug, Default)]
pub struct BellScanner {
    state: State,
    osc: Vec<u8>,
}

impl BellScanner {
    pub fn scan(&mut self, bytes: &[u8]) -> Signals {
        let mut out = Signals::default();
        for &b in bytes {
            self.state = match (self.state, b) {
                (State::Ground, 0x07) => {
                    out.bell = true;
                    State::Ground
                }
                (State::Ground, 0x1b) => State::Escape,
                (State::Ground, _) => State::Ground,
                (State::Escape, b']') => {
                    self.osc.clear();
                    State::Osc { esc: false }
                }
                (State::Escape, b'P' | b'_' | b'^' | b'X') => State::Str { esc: false },
                (State::Escape, 0x1b) => State::Escape,
                (State::Escape, _) => State::Ground,
                (State::Osc { .. }, 0x07) | (State::Osc { esc: true }, b'\\') => {
                    if let Some(text) = notification(&self.osc) {
                        out.notifications.push(text);
                    } else if let Some(copy) = clipboard(&self.osc) {
                        out.clipboard.push(copy);
                    }
                    State::Ground
                }
                (State::Osc { .. }, 0x1b) => State::Osc { esc: true },
                (State::Osc { .. }, b) => {
                    let limit = if self.osc.starts_with(b"52;") {
                        MAX_CLIPBOARD
                    } else {
                        MAX_TEXT + 32
                    };
                    if self.osc.len() < limit {
                        self.osc.push(b);
                    }
                    State::Osc { esc: false }
                }
                (State::Str { .. }, 0x07) | (State::Str { esc: true }, b'\\') => State::Ground,
                (State::Str { .. }, 0x1b) => State::Str { esc: true },
                (State::Str { .. }, _) => State::Str { esc: false },
            };
        }
        out
    }
}

/// An OSC 52 copy as `selection;base64` (not a paste query, nothing cut short).
fn clipboard(osc: &[u8]) -> Option<String> {
    let rest = osc.strip_prefix(b"52;")?;
    let (selection, data) = rest.split_at(rest.iter().position(|b| *b == b';')?);
    let data = &data[1..];
    let valid = selection.iter().all(|b| b"cpqs01234567".contains(b))
        && !data.is_empty()
        && data != b"?"
        && osc.len() < MAX_CLIPBOARD
        && data
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(b));
    valid.then(|| String::from_utf8_lossy(rest).into_owned())
}

/// The text of an OSC 9 or OSC 777 notification (not OSC 9's ConEmu sub-commands `9;N;`).
fn notification(osc: &[u8]) -> Option<String> {
    let s = String::from_utf8_lossy(osc);
    let text = if let Some(rest) = s.strip_prefix("9;") {
        if rest
            .split(';')
            .next()
            .is_some_and(|p| p.len() == 1 && p.chars().all(|c| c.is_ascii_digit()))
        {
            return None;
        }
        rest.to_string()
    } else if let Some(rest) = s.strip_prefix("777;notify;") {
        rest.replacen(';', ": ", 1)
    } else {
        return None;
    };
    let clean: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_TEXT)
        .collect();
    (!clean.is_empty()).then_some(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bells_outside_strings_and_notifications_split_across_chunks() {
        let mut s = BellScanner::default();
        // A title ended by BEL is not a bell.
        assert_eq!(s.scan(b"\x1b]0;title\x07"), Signals::default());
        assert!(s.scan(b"done\x07").bell);
        let first = s.scan(b"\x1b]9;build fin");
        assert!(first.notifications.is_empty());
        let second = s.scan(b"ished\x1b\\");
        assert_eq!(second.notifications, ["build finished"]);
        assert_eq!(
            s.scan(b"\x1b]777;notify;CI;tests passed\x07").notifications,
            ["CI: tests passed"]
        );
        // ConEmu's OSC 9;4 progress is not a notification.
        assert_eq!(s.scan(b"\x1b]9;4;1;50\x07"), Signals::default());
        // A BEL inside a DCS string is not a bell.
        assert!(!s.scan(b"\x1bPq#0\x07").bell);
        // OSC 52 copies are passed on, split or not; paste queries are not.
        assert!(s.scan(b"\x1b]52;c;aGVs").clipboard.is_empty());
        assert_eq!(s.scan(b"bG8=\x07").clipboard, ["c;aGVsbG8="]);
        assert!(s.scan(b"\x1b]52;c;?\x07").clipboard.is_empty());
    }
}
