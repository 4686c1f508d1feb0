//! What a pane's program sets that the vt100 screen does not keep, tracked from the same
//! parser callbacks in the worker (so a snapshot carries it) and in the TUI's mirror (so the
//! TUI shows it):
//!
//! | sequence | kept as |
//! |---|---|
//! | `OSC 0 ; text` / `OSC 2 ; text` | [`PaneModes::title`], shown in the pane's border |
//! | `CSI Ps SP q` (DECSCUSR) | [`PaneModes::cursor_shape`], the shape of the pane's cursor |
//! | `CSI ? 1004 h/l` | [`PaneModes::focus_events`]: the program wants `CSI I` / `CSI O` |
//! | `CSI ? 2026 h/l` | [`PaneModes::synchronized`]: inside a synchronized update |

/// Longest title kept (in characters).
const MAX_TITLE: usize = 256;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PaneModes {
    pub title: String,
    /// DECSCUSR's parameter: 0 the terminal's default, 1/2 block, 3/4 underline, 5/6 bar (odd
    /// ones blink).
    pub cursor_shape: u8,
    pub focus_events: bool,
    pub synchronized: bool,
}

/// What a CSI sequence did to the modes.
#[derive(Debug, PartialEq, Eq)]
pub enum Changed {
    No,
    Yes,
    /// A synchronized update began (`CSI ? 2026 h` while not in one).
    SyncBegan,
}

impl PaneModes {
    /// Applies a CSI sequence the vt100 parser passed on as unhandled.
    pub fn csi(&mut self, i1: Option<u8>, i2: Option<u8>, params: &[&[u16]], c: char) -> Changed {
        let first = params.first().and_then(|p| p.first()).copied().unwrap_or(0);
        match (i1, i2, c) {
            (Some(b' '), None, 'q') => {
                self.cursor_shape = u8::try_from(first.min(6)).unwrap_or(0);
                Changed::Yes
            }
            (Some(b'?'), None, 'h' | 'l') => {
                let on = c == 'h';
                let mut changed = Changed::No;
                for p in params.iter().filter_map(|p| p.first()) {
                    match p {
                        1004 => {
                            self.focus_events = on;
                            changed = Changed::Yes;
                        }
                        2026 => {
                            let began = on && !self.synchronized;
                            self.synchronized = on;
                            changed = if began {
                                Changed::SyncBegan
                            } else {
                                Changed::Yes
                            };
                        }
                        _ => {}
                    }
                }
                changed
            }
            _ => Changed::No,
        }
    }

    pub fn set_title(&mut self, bytes: &[u8]) {
        self.title = String::from_utf8_lossy(bytes)
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_TITLE)
            .collect();
    }

    /// DECRQM's answer for a private mode tracked here (1 set, 2 reset), if it is one.
    pub fn private_mode(&self, mode: u16) -> Option<u8> {
        let on = |b: bool| if b { 1 } else { 2 };
        match mode {
            1004 => Some(on(self.focus_events)),
            2026 => Some(on(self.synchronized)),
            _ => None,
        }
    }

    /// Sequences that give a fresh terminal these modes (appended to a snapshot's repaint).
    pub fn formatted(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.title.is_empty() {
            out.extend_from_slice(format!("\x1b]2;{}\x1b\\", self.title).as_bytes());
        }
        if self.cursor_shape != 0 {
            out.extend_from_slice(format!("\x1b[{} q", self.cursor_shape).as_bytes());
        }
        if self.focus_events {
            out.extend_from_slice(b"\x1b[?1004h");
        }
        if self.synchronized {
            out.extend_from_slice(b"\x1b[?2026h");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds a parser's callbacks into [`PaneModes`] alone.
    struct ModesOnly(PaneModes);

    impl vt100::Callbacks for ModesOnly {
        fn set_window_title(&mut self, _: &mut vt100::Screen, title: &[u8]) {
            self.0.set_title(title);
        }
        fn unhandled_csi(
            &mut self,
            _: &mut vt100::Screen,
            i1: Option<u8>,
            i2: Option<u8>,
            params: &[&[u16]],
            c: char,
        ) {
            self.0.csi(i1, i2, params, c);
        }
    }

    fn modes(stream: &[u8]) -> PaneModes {
        let mut p = vt100::Parser::new_with_callbacks(5, 20, 0, ModesOnly(PaneModes::default()));
        p.process(stream);
        p.callbacks().0.clone()
    }

    #[test]
    fn title_cursor_shape_focus_and_sync_are_kept_and_reproduced() {
        let m = modes(b"\x1b]0;first\x07\x1b]2;build: ok\x1b\\\x1b[5 q\x1b[?1004h\x1b[?2026h");
        assert_eq!(m.title, "build: ok");
        assert_eq!(m.cursor_shape, 5);
        assert!(m.focus_events && m.synchronized);
        assert_eq!(
            modes(&m.formatted()),
            m,
            "a snapshot's repaint carries them"
        );
        let off = modes(b"\x1b[?1004h\x1b[?2026h\x1b[?1004;2026l\x1b[0 q");
        assert_eq!(off, PaneModes::default());
        assert_eq!(off.private_mode(2026), Some(2));
        assert_eq!(m.private_mode(1004), Some(1));
        assert_eq!(m.private_mode(25), None);
    }
}
