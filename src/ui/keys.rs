//! Keys to the bytes a terminal sends.
//!
//! The programs in our panes expect what xterm would send them, so a key event read by
//! crossterm is re-encoded here. The encoding follows xterm's defaults (`modifyCursorKeys`
//! style parameters for modified special keys, ESC prefix for Alt, DEL for Backspace).

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// Bytes an xterm sends for `key`; `application_cursor` is DECCKM (vt100 `screen.application_cursor()`), which makes unmodified arrows/Home/End send SS3 (`\x1bOA`) instead of CSI (`\x1b[A`). None for keys with no byte encoding (e.g. bare modifier keys, key release events).
pub fn key_to_bytes(key: &KeyEvent, application_cursor: bool) -> Option<Vec<u8>> {
    // Release events only arrive with the kitty protocol enabled; a terminal sends
    // nothing on release, and a repeat is just another press.
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let mods = key.modifiers;
    let alt = mods.contains(KeyModifiers::ALT);
    let ctrl = mods.contains(KeyModifiers::CONTROL);
    let shift = mods.contains(KeyModifiers::SHIFT);
    // xterm's modifier parameter: 1 + shift + 2*alt + 4*ctrl; 1 means "no modifier".
    let m = 1 + u8::from(shift) + 2 * u8::from(alt) + 4 * u8::from(ctrl);

    let bytes = match key.code {
        KeyCode::Char(c) => return Some(char_bytes(c, ctrl, alt)),
        KeyCode::Enter => esc_prefixed(alt, b"\r"),
        // xterm's default: Backspace is DEL, Ctrl+Backspace is BS.
        KeyCode::Backspace => esc_prefixed(alt, if ctrl { b"\x08" } else { b"\x7f" }),
        // With the kitty protocol Shift+Tab can arrive as Tab+SHIFT rather than BackTab.
        KeyCode::Tab if shift => b"\x1b[Z".to_vec(),
        KeyCode::Tab => esc_prefixed(alt, b"\t"),
        KeyCode::BackTab => b"\x1b[Z".to_vec(),
        KeyCode::Esc => esc_prefixed(alt, b"\x1b"),
        KeyCode::Null => esc_prefixed(alt, b"\0"),
        KeyCode::Up => cursor_key(b'A', m, application_cursor),
        KeyCode::Down => cursor_key(b'B', m, application_cursor),
        KeyCode::Right => cursor_key(b'C', m, application_cursor),
        KeyCode::Left => cursor_key(b'D', m, application_cursor),
        KeyCode::Home => cursor_key(b'H', m, application_cursor),
        KeyCode::End => cursor_key(b'F', m, application_cursor),
        KeyCode::Insert => tilde_key(2, m),
        KeyCode::Delete => tilde_key(3, m),
        KeyCode::PageUp => tilde_key(5, m),
        KeyCode::PageDown => tilde_key(6, m),
        KeyCode::F(n @ 1..=4) => {
            let last = b'P' + (n - 1);
            if m == 1 {
                vec![0x1b, b'O', last]
            } else {
                format!("\x1b[1;{m}{}", char::from(last)).into_bytes()
            }
        }
        KeyCode::F(n @ 5..=12) => {
            // The gaps (16, 22) are historical: VT220 numbering skipped them.
            const CODES: [u8; 8] = [15, 17, 18, 19, 20, 21, 23, 24];
            tilde_key(CODES[usize::from(n - 5)], m)
        }
        _ => return None,
    };
    Some(bytes)
}

/// Pasted text: wrapped in `\x1b[200~`…`\x1b[201~` when the program enabled bracketed paste, else raw; `\n` becomes `\r` like terminals do on paste.
///
/// `\r\n` also becomes a single `\r`, so text copied on Windows doesn't submit blank
/// lines. When bracketed, an end marker inside the text is dropped: otherwise the
/// rest of the paste would reach the program as typed keys (a known paste-injection
/// trick).
pub fn paste_to_bytes(text: &str, bracketed: bool) -> Vec<u8> {
    const START: &[u8] = b"\x1b[200~";
    const END: &[u8] = b"\x1b[201~";
    let mut out = Vec::with_capacity(text.len() + START.len() + END.len());
    if bracketed {
        out.extend_from_slice(START);
    }
    // Working on bytes is safe for UTF-8: every pattern is ASCII, and ASCII bytes never
    // occur inside a multi-byte character.
    let mut rest = text.as_bytes();
    while let Some(&b) = rest.first() {
        if bracketed && rest.starts_with(END) {
            rest = &rest[END.len()..];
        } else if rest.starts_with(b"\r\n") {
            out.push(b'\r');
            rest = &rest[2..];
        } else {
            out.push(if b == b'\n' { b'\r' } else { b });
            rest = &rest[1..];
        }
    }
    if bracketed {
        out.extend_from_slice(END);
    }
    out
}

/// A printable key, possibly with Ctrl and/or Alt.
fn char_bytes(c: char, ctrl: bool, alt: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(5);
    if alt {
        out.push(0x1b);
    }
    match ctrl.then(|| ctrl_byte(c)).flatten() {
        Some(b) => out.push(b),
        // Ctrl with a key that has no control code (Ctrl+1, Ctrl+é): xterm sends the
        // character itself.
        None => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
    }
    out
}

/// The C0 control code for Ctrl+`c`, as xterm produces it.
///
/// The digit aliases matter in practice: crossterm decodes 0x00 as Ctrl+Space and
/// 0x1c..=0x1f as Ctrl+4..=Ctrl+7, so those must map back to the same bytes.
fn ctrl_byte(c: char) -> Option<u8> {
    Some(match c {
        'a'..='z' | 'A'..='Z' => c.to_ascii_uppercase() as u8 - b'@',
        ' ' | '@' | '2' => 0x00,
        '[' | '3' => 0x1b,
        '\\' | '4' => 0x1c,
        ']' | '5' => 0x1d,
        '^' | '6' => 0x1e,
        '_' | '7' | '/' => 0x1f,
        '?' | '8' => 0x7f,
        _ => return None,
    })
}

fn esc_prefixed(alt: bool, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 1);
    if alt {
        out.push(0x1b);
    }
    out.extend_from_slice(bytes);
    out
}

/// Arrows, Home and End: SS3 or CSI per DECCKM when unmodified, always `CSI 1;m` when
/// modified (xterm ignores DECCKM then).
fn cursor_key(last: u8, m: u8, application_cursor: bool) -> Vec<u8> {
    match (m, application_cursor) {
        (1, true) => vec![0x1b, b'O', last],
        (1, false) => vec![0x1b, b'[', last],
        _ => format!("\x1b[1;{m}{}", char::from(last)).into_bytes(),
    }
}

/// The `CSI n ~` family (Insert, Delete, PageUp/Down, F5-F12), `CSI n;m ~` when modified.
fn tilde_key(n: u8, m: u8) -> Vec<u8> {
    if m == 1 {
        format!("\x1b[{n}~").into_bytes()
    } else {
        format!("\x1b[{n};{m}~").into_bytes()
    }
}

/// A mouse event as the program in a pane asked to get it (DECSET 1000/1002/1003 with the
/// default or SGR encoding), at `(col, row)` inside the pane; `None` when its mode does not
/// report this kind of event.
pub fn mouse_to_bytes(
    ev: &crossterm::event::MouseEvent,
    col: u16,
    row: u16,
    mode: vt100::MouseProtocolMode,
    encoding: vt100::MouseProtocolEncoding,
) -> Option<Vec<u8>> {
    use crossterm::event::{MouseButton, MouseEventKind as K};
    use vt100::MouseProtocolMode as M;
    let button = |b: MouseButton| match b {
        MouseButton::Left => 0,
        MouseButton::Middle => 1,
        MouseButton::Right => 2,
    };
    let (code, release) = match ev.kind {
        K::Down(b) => (button(b), false),
        K::Up(b) if mode != M::Press => (button(b), true),
        K::Drag(b) if matches!(mode, M::ButtonMotion | M::AnyMotion) => (button(b) + 32, false),
        K::Moved if mode == M::AnyMotion => (35, false),
        K::ScrollUp => (64, false),
        K::ScrollDown => (65, false),
        _ => return None,
    };
    if mode == M::None {
        return None;
    }
    let mods = ev.modifiers;
    let code =
        code + if mods.contains(KeyModifiers::SHIFT) {
            4
        } else {
            0
        } + if mods.contains(KeyModifiers::ALT) {
            8
        } else {
            0
        } + if mods.contains(KeyModifiers::CONTROL) {
            16
        } else {
            0
        };
    let (x, y) = (u32::from(col) + 1, u32::from(row) + 1);
    Some(match encoding {
        vt100::MouseProtocolEncoding::Sgr => {
            format!("\x1b[<{code};{x};{y}{}", if release { 'm' } else { 'M' }).into_bytes()
        }
        // X10 style: a release is button 3; coordinates past 223 cannot be said.
        _ => {
            let code = if release { 3 + (code & !3) } else { code };
            let byte = |n: u32| u8::try_from(n + 32).ok();
            vec![0x1b, b'[', b'M', byte(code)?, byte(x)?, byte(y)?]
        }
    })
}

#[cfg(test)]
mod tests {
    use crossterm::event::{KeyEventState, ModifierKeyCode};

    use super::*;

    #[test]
    fn mouse_reports_are_encoded_as_the_program_asked() {
        use crossterm::event::{MouseButton, MouseEvent, MouseEventKind as K};
        use vt100::{MouseProtocolEncoding as E, MouseProtocolMode as M};
        let ev = |kind| MouseEvent {
            kind,
            column: 0,
            row: 0,
            modifiers: KeyModifiers::NONE,
        };
        let down = ev(K::Down(MouseButton::Left));
        let up = ev(K::Up(MouseButton::Left));
        assert_eq!(
            mouse_to_bytes(&down, 4, 2, M::PressRelease, E::Sgr).unwrap(),
            b"\x1b[<0;5;3M"
        );
        assert_eq!(
            mouse_to_bytes(&up, 4, 2, M::PressRelease, E::Sgr).unwrap(),
            b"\x1b[<0;5;3m"
        );
        assert_eq!(
            mouse_to_bytes(&up, 4, 2, M::PressRelease, E::Default).unwrap(),
            vec![0x1b, b'[', b'M', 32 + 3, 32 + 5, 32 + 3]
        );
        let wheel = ev(K::ScrollUp);
        assert_eq!(
            mouse_to_bytes(&wheel, 0, 0, M::PressRelease, E::Sgr).unwrap(),
            b"\x1b[<64;1;1M"
        );
        // Press-only mode reports no release; motion only with a motion mode.
        assert_eq!(mouse_to_bytes(&up, 0, 0, M::Press, E::Sgr), None);
        let drag = ev(K::Drag(MouseButton::Left));
        assert_eq!(mouse_to_bytes(&drag, 0, 0, M::PressRelease, E::Sgr), None);
        assert_eq!(
            mouse_to_bytes(&drag, 0, 0, M::ButtonMotion, E::Sgr).unwrap(),
            b"\x1b[<32;1;1M"
        );
        assert_eq!(mouse_to_bytes(&down, 0, 0, M::None, E::Sgr), None);
    }

    const NONE: KeyModifiers = KeyModifiers::NONE;
    const SHIFT: KeyModifiers = KeyModifiers::SHIFT;
    const CTRL: KeyModifiers = KeyModifiers::CONTROL;
    const ALT: KeyModifiers = KeyModifiers::ALT;

    fn key(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, mods)
    }

    /// Runs a table of (code, modifiers, expected bytes) with the given DECCKM state.
    fn check(table: &[(KeyCode, KeyModifiers, &[u8])], application_cursor: bool) {
        for (code, mods, want) in table {
            let got = key_to_bytes(&key(*code, *mods), application_cursor);
            assert_eq!(
                got.as_deref(),
                Some(*want),
                "{code:?} {mods:?} (DECCKM {application_cursor}): got {:?}, want {:?}",
                got.as_deref().map(String::from_utf8_lossy),
                String::from_utf8_lossy(want),
            );
        }
    }

    #[test]
    fn printable_chars() {
        check(
            &[
                (KeyCode::Char('a'), NONE, b"a"),
                (KeyCode::Char('A'), SHIFT, b"A"),
                (KeyCode::Char('!'), SHIFT, b"!"),
                (KeyCode::Char(' '), NONE, b" "),
                (KeyCode::Char('é'), NONE, "é".as_bytes()),
                (KeyCode::Char('世'), NONE, "世".as_bytes()),
                (KeyCode::Char('🦀'), NONE, "🦀".as_bytes()),
            ],
            false,
        );
    }

    #[test]
    fn ctrl_chars() {
        check(
            &[
                (KeyCode::Char('a'), CTRL, b"\x01"),
                (KeyCode::Char('c'), CTRL, b"\x03"),
                (KeyCode::Char('z'), CTRL, b"\x1a"),
                (KeyCode::Char('A'), CTRL | SHIFT, b"\x01"),
                (KeyCode::Char(' '), CTRL, b"\x00"),
                (KeyCode::Char('@'), CTRL, b"\x00"),
                (KeyCode::Char('2'), CTRL, b"\x00"),
                (KeyCode::Char('['), CTRL, b"\x1b"),
                (KeyCode::Char('\\'), CTRL, b"\x1c"),
                (KeyCode::Char(']'), CTRL, b"\x1d"),
                (KeyCode::Char('^'), CTRL, b"\x1e"),
                (KeyCode::Char('_'), CTRL, b"\x1f"),
                (KeyCode::Char('?'), CTRL, b"\x7f"),
                // What crossterm reports for the bytes 0x1c..=0x1f.
                (KeyCode::Char('4'), CTRL, b"\x1c"),
                (KeyCode::Char('7'), CTRL, b"\x1f"),
                (KeyCode::Char('1'), CTRL, b"1"),
            ],
            false,
        );
    }

    #[test]
    fn alt_chars() {
        check(
            &[
                (KeyCode::Char('x'), ALT, b"\x1bx"),
                (KeyCode::Char('X'), ALT | SHIFT, b"\x1bX"),
                (KeyCode::Char('c'), ALT | CTRL, b"\x1b\x03"),
                (KeyCode::Char(' '), ALT | CTRL, b"\x1b\x00"),
                (KeyCode::Char('é'), ALT, "\x1bé".as_bytes()),
            ],
            false,
        );
    }

    #[test]
    fn editing_keys() {
        check(
            &[
                (KeyCode::Enter, NONE, b"\r"),
                (KeyCode::Enter, ALT, b"\x1b\r"),
                (KeyCode::Backspace, NONE, b"\x7f"),
                (KeyCode::Backspace, ALT, b"\x1b\x7f"),
                (KeyCode::Backspace, CTRL, b"\x08"),
                (KeyCode::Tab, NONE, b"\t"),
                (KeyCode::Tab, ALT, b"\x1b\t"),
                (KeyCode::Tab, SHIFT, b"\x1b[Z"),
                (KeyCode::BackTab, SHIFT, b"\x1b[Z"),
                (KeyCode::Esc, NONE, b"\x1b"),
                (KeyCode::Esc, ALT, b"\x1b\x1b"),
                (KeyCode::Null, NONE, b"\x00"),
                (KeyCode::Insert, NONE, b"\x1b[2~"),
                (KeyCode::Delete, NONE, b"\x1b[3~"),
                (KeyCode::PageUp, NONE, b"\x1b[5~"),
                (KeyCode::PageDown, NONE, b"\x1b[6~"),
                (KeyCode::Delete, CTRL, b"\x1b[3;5~"),
                (KeyCode::PageUp, SHIFT, b"\x1b[5;2~"),
                (KeyCode::PageDown, ALT | CTRL, b"\x1b[6;7~"),
                (KeyCode::Insert, SHIFT | ALT | CTRL, b"\x1b[2;8~"),
            ],
            false,
        );
    }

    #[test]
    fn cursor_keys_normal_mode() {
        check(
            &[
                (KeyCode::Up, NONE, b"\x1b[A"),
                (KeyCode::Down, NONE, b"\x1b[B"),
                (KeyCode::Right, NONE, b"\x1b[C"),
                (KeyCode::Left, NONE, b"\x1b[D"),
                (KeyCode::Home, NONE, b"\x1b[H"),
                (KeyCode::End, NONE, b"\x1b[F"),
                (KeyCode::Up, SHIFT, b"\x1b[1;2A"),
                (KeyCode::Down, ALT, b"\x1b[1;3B"),
                (KeyCode::Right, SHIFT | ALT, b"\x1b[1;4C"),
                (KeyCode::Left, CTRL, b"\x1b[1;5D"),
                (KeyCode::Home, SHIFT | CTRL, b"\x1b[1;6H"),
                (KeyCode::End, ALT | CTRL, b"\x1b[1;7F"),
                (KeyCode::Up, SHIFT | ALT | CTRL, b"\x1b[1;8A"),
            ],
            false,
        );
    }

    #[test]
    fn cursor_keys_application_mode() {
        check(
            &[
                (KeyCode::Up, NONE, b"\x1bOA"),
                (KeyCode::Down, NONE, b"\x1bOB"),
                (KeyCode::Right, NONE, b"\x1bOC"),
                (KeyCode::Left, NONE, b"\x1bOD"),
                (KeyCode::Home, NONE, b"\x1bOH"),
                (KeyCode::End, NONE, b"\x1bOF"),
                // Modified keys ignore DECCKM.
                (KeyCode::Left, CTRL, b"\x1b[1;5D"),
                (KeyCode::End, SHIFT, b"\x1b[1;2F"),
                // Keys DECCKM doesn't cover are unaffected.
                (KeyCode::PageUp, NONE, b"\x1b[5~"),
                (KeyCode::F(1), NONE, b"\x1bOP"),
            ],
            true,
        );
    }

    #[test]
    fn function_keys() {
        check(
            &[
                (KeyCode::F(1), NONE, b"\x1bOP"),
                (KeyCode::F(2), NONE, b"\x1bOQ"),
                (KeyCode::F(3), NONE, b"\x1bOR"),
                (KeyCode::F(4), NONE, b"\x1bOS"),
                (KeyCode::F(5), NONE, b"\x1b[15~"),
                (KeyCode::F(6), NONE, b"\x1b[17~"),
                (KeyCode::F(7), NONE, b"\x1b[18~"),
                (KeyCode::F(8), NONE, b"\x1b[19~"),
                (KeyCode::F(9), NONE, b"\x1b[20~"),
                (KeyCode::F(10), NONE, b"\x1b[21~"),
                (KeyCode::F(11), NONE, b"\x1b[23~"),
                (KeyCode::F(12), NONE, b"\x1b[24~"),
                (KeyCode::F(1), SHIFT, b"\x1b[1;2P"),
                (KeyCode::F(4), CTRL, b"\x1b[1;5S"),
                (KeyCode::F(5), SHIFT, b"\x1b[15;2~"),
                (KeyCode::F(12), ALT | CTRL, b"\x1b[24;7~"),
            ],
            false,
        );
    }

    #[test]
    fn keys_without_bytes() {
        let modifier = KeyCode::Modifier(ModifierKeyCode::LeftShift);
        for code in [modifier, KeyCode::CapsLock, KeyCode::F(0), KeyCode::F(13)] {
            assert_eq!(key_to_bytes(&key(code, NONE), false), None, "{code:?}");
        }
    }

    #[test]
    fn release_is_ignored_and_repeat_is_not() {
        let release = KeyEvent::new_with_kind(KeyCode::Char('a'), NONE, KeyEventKind::Release);
        assert_eq!(key_to_bytes(&release, false), None);
        let repeat = KeyEvent {
            kind: KeyEventKind::Repeat,
            state: KeyEventState::NONE,
            ..key(KeyCode::Up, NONE)
        };
        assert_eq!(
            key_to_bytes(&repeat, false).as_deref(),
            Some(&b"\x1b[A"[..])
        );
    }

    #[test]
    fn paste() {
        let table: &[(&str, bool, &[u8])] = &[
            ("", false, b""),
            ("", true, b"\x1b[200~\x1b[201~"),
            ("ls -l", false, b"ls -l"),
            ("ls -l", true, b"\x1b[200~ls -l\x1b[201~"),
            ("a\nb\n", false, b"a\rb\r"),
            ("a\r\nb", false, b"a\rb"),
            ("a\rb", false, b"a\rb"),
            ("x\ny", true, b"\x1b[200~x\ry\x1b[201~"),
            ("世界\n🦀", false, "世界\r🦀".as_bytes()),
            // An embedded end marker can't terminate the paste early...
            (
                "a\x1b[201~rm -rf ~\n",
                true,
                b"\x1b[200~arm -rf ~\r\x1b[201~",
            ),
            // ...but is passed through untouched when nothing is bracketed.
            ("a\x1b[201~b", false, b"a\x1b[201~b"),
        ];
        for (text, bracketed, want) in table {
            assert_eq!(
                paste_to_bytes(text, *bracketed),
                *want,
                "{text:?} bracketed={bracketed}"
            );
        }
    }
}
