//! Every key of the TUI, once: the `?` help draws these tables and the README's key tables
//! are generated from them (a test holds the README to [`markdown`]). A key added to the
//! input handling gets its line here.

/// One line of a key table: the keys, and what they do.
pub type KeyLine = (&'static str, &'static str);

/// A table, with its heading.
pub struct KeyTable {
    pub title: &'static str,
    pub keys: &'static [KeyLine],
}

pub const VIEW: KeyTable = KeyTable {
    title: "View mode (the default: nothing you type reaches a worker)",
    keys: &[
        ("arrows, h j k l", "focus the pane on that side"),
        (
            "Tab / Shift-Tab, 1-9, click",
            "focus the next / previous / Nth / clicked pane",
        ),
        (
            "Enter or d",
            "drive: your keys go to the worker; messages wait meanwhile",
        ),
        (
            "r",
            "relay: your keys go to the worker; messages keep coming",
        ),
        ("v or Esc", "back to the live screen (from scrollback)"),
        ("[", "copy mode: select with the keyboard, y copies"),
        ("/", "search the focused pane's scrollback"),
        (
            "mouse drag",
            "select in one pane and copy (double-click a word, triple a line)",
        ),
        ("PgUp / PgDn, wheel", "scroll back and forth"),
        ("s", "snapshot of the screen (w saves it to a file)"),
        ("m", "toggle the worker's session mode relay / human"),
        ("p / f", "show / flush the worker's pending messages"),
        (
            "c",
            "compose a relay message (Tab: to the focused one or to all)",
        ),
        (
            "n",
            "new worker: NAME=CMD or CMD (Tab: in its own git worktree)",
        ),
        (
            "x",
            "release the worker (asks, and what becomes of its worktree)",
        ),
        ("R", "start an exited worker again, as it was"),
        (
            "D",
            "review its changes: comment on lines, S sends them as one message",
        ),
        (",", "give the pane a label"),
        (
            "Space",
            "next layout: tiled, main + stack, main on top, columns, rows",
        ),
        ("< / >", "shrink / grow the focused pane (or drag a border)"),
        ("z", "zoom the focused pane"),
        ("!", "jump to the next pane that needs you"),
        ("a", "alerts log"),
        ("?", "this help"),
        ("q", "quit (asks while workers run)"),
    ],
};

pub const PREFIX: KeyTable = KeyTable {
    title: "Drive and relay: every key goes to the worker, except after the prefix (Ctrl-b)",
    keys: &[
        ("prefix d / Esc / v", "back to view"),
        ("prefix [", "copy mode"),
        ("prefix f / p", "flush / show pending messages"),
        ("prefix z", "zoom"),
        ("prefix Space", "next layout"),
        ("prefix < / >", "shrink / grow the pane"),
        ("prefix ?", "this help"),
        ("prefix prefix", "the prefix key itself, to the worker"),
    ],
};

pub const COPY: KeyTable = KeyTable {
    title: "Copy mode (the pane's screen and scrollback held still)",
    keys: &[
        ("h j k l, arrows", "move"),
        (
            "w b e, 0 ^ $",
            "by words; to the line's start, first character, end",
        ),
        (
            "g G, H M L",
            "to the top / bottom; to the view's top / middle / bottom",
        ),
        ("Ctrl-u Ctrl-d, PgUp PgDn", "half a page / a page"),
        ("v / V", "select by character / by line"),
        (
            "y or Enter",
            "copy the selection (OSC 52 and the system clipboard)",
        ),
        (
            "/ ? then n N",
            "search forward / back (smart case), next / previous match",
        ),
        ("Esc / q", "clear the selection / leave"),
    ],
};

pub const REVIEW: KeyTable = KeyTable {
    title: "Review (D)",
    keys: &[
        ("j k, PgUp PgDn, g G", "move between lines"),
        ("] / [", "next / previous file"),
        ("c or Enter", "comment on the line (Enter keeps it)"),
        ("x", "delete the line's comment"),
        ("S", "send every comment as one message"),
        ("Esc / q", "close (comments wait for the next review)"),
    ],
};

pub const ALL: [&KeyTable; 4] = [&VIEW, &PREFIX, &COPY, &REVIEW];

/// The README's key tables.
pub fn markdown() -> String {
    let mut out = String::new();
    for table in ALL {
        out.push_str(&format!("{}:\n\n| key | does |\n|---|---|\n", table.title));
        for (keys, does) in table.keys {
            out.push_str(&format!("| `{keys}` | {does} |\n"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    /// The README between its `keys` markers is exactly what [`super::markdown`] makes.
    #[test]
    fn the_readme_lists_exactly_the_keys_of_the_help() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
        let readme = std::fs::read_to_string(&path).unwrap();
        let start = "<!-- keys: generated from src/ui/keymap.rs -->\n";
        let end = "<!-- end of keys -->";
        let from = readme.find(start).expect("the README's keys marker") + start.len();
        let to = readme[from..].find(end).expect("the README's end marker") + from;
        if std::env::var_os("BROKERTUI_BLESS").is_some() {
            // `BROKERTUI_BLESS=1 cargo test --lib keymap` writes the tables into the README.
            let blessed = format!("{}{}{}", &readme[..from], super::markdown(), &readme[to..]);
            std::fs::write(&path, blessed).unwrap();
            return;
        }
        assert_eq!(
            readme[from..to],
            super::markdown(),
            "README.md's key tables differ from src/ui/keymap.rs: BROKERTUI_BLESS=1 cargo test --lib keymap"
        );
    }
}
