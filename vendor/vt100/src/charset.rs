//! brokertui patch: the DEC special graphics character set (`ESC ( 0`), which ncurses
//! programs such as dialog and mc draw their boxes with under an xterm `TERM`.

/// The character `c` stands for in the DEC special graphics set (tmux's table).
pub fn dec_graphics(c: char) -> char {
    match c {
        '+' => '→',
        ',' => '←',
        '-' => '↑',
        '.' => '↓',
        '0' => '▮',
        '`' => '◆',
        'a' => '▒',
        'b' => '␉',
        'c' => '␌',
        'd' => '␍',
        'e' => '␊',
        'f' => '°',
        'g' => '±',
        'h' => '␤',
        'i' => '␋',
        'j' => '┘',
        'k' => '┐',
        'l' => '┌',
        'm' => '└',
        'n' => '┼',
        'o' => '⎺',
        'p' => '⎻',
        'q' => '─',
        'r' => '⎼',
        's' => '⎽',
        't' => '├',
        'u' => '┤',
        'v' => '┴',
        'w' => '┬',
        'x' => '│',
        'y' => '≤',
        'z' => '≥',
        '{' => 'π',
        '|' => '≠',
        '}' => '£',
        '~' => '·',
        other => other,
    }
}

/// Which set G0 and G1 hold, and which of them is in use (SO / SI).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Charsets {
    pub graphics: [bool; 2],
    pub shifted: bool,
}

impl Charsets {
    /// Whether printed characters are translated now.
    pub fn active(self) -> bool {
        self.graphics[usize::from(self.shifted)]
    }

    /// Bytes that put a fresh terminal in this state.
    pub fn write_formatted(self, contents: &mut Vec<u8>) {
        if self.graphics[0] {
            contents.extend_from_slice(b"\x1b(0");
        }
        if self.graphics[1] {
            contents.extend_from_slice(b"\x1b)0");
        }
        if self.shifted {
            contents.push(0x0e);
        }
    }
}
