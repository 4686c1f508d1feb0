//! The fidelity suite: the same byte streams and the same real programs through a brokertui
//! worker and a tmux pane of the same size, screens compared cell by cell (text, colours,
//! attributes, cursor, title, history). The pass count is in `docs/fidelity.md`.

mod common;

use common::side_by_side::{Case, SideBySide, Step, all_match, key};
use crossterm::event::KeyCode;

/// esctest/vttest-style streams: each exercises one family of sequences.
fn streams(dir: &std::path::Path) -> Vec<Case> {
    let mut numbered = String::new();
    for i in 1..=30 {
        numbered.push_str(&format!("line {i}\r\n"));
    }
    let many: String = (1..=150).map(|i| format!("history line {i}\r\n")).collect();
    let s = |name: &str, bytes: &str| Case::stream(name, bytes.as_bytes(), dir);
    vec![
        // The issue's cases.
        s("insert_mode", "abcdef\x1b[4D\x1b[4hXY\x1b[4l"),
        s("insert_chars_bg", "abcdef\r\x1b[2C\x1b[44m\x1b[3@\x1b[0m"),
        s(
            "insert_line_bg",
            "one\r\ntwo\r\n\x1b[A\x1b[44m\x1b[L\x1b[0m\x1b[10Cz",
        ),
        s(
            "erase_line_bg",
            "xx\x1b[44m\x1b[K\x1b[0m\x1b[5Cy\r\n\x1b[41m\x1b[2K\x1b[0m\x1b[7Cq",
        ),
        s(
            "synchronized_frame",
            "\x1b[?2026h\x1b[2J\x1b[Hframe one\x1b[?2026l\x1b[?2026h\x1b[Hframe two\x1b[?2026l",
        ),
        s("title", "\x1b]2;the title\x07title set"),
        s("title_osc0", "\x1b]0;icon and title\x1b\\title set"),
        // Cursor movement.
        s(
            "cursor_moves",
            "\x1b[5;10HA\x1b[2AB\x1b[3BC\x1b[4CD\x1b[6DE\x1b[2EF\x1b[FG\x1b[30GH\x1b[12dI\x1b[3;3fJ\x1b[50`K",
        ),
        s("cursor_clamped", "\x1b[999;999HX\x1b[999AY\x1b[999DZ"),
        s("backspace_cr_lf", "abc\x08\x08X\rY\nZ\x0bV\x0cW"),
        s(
            "save_restore",
            "\x1b[3;3H\x1b[1;31m\x1b7\x1b[10;10H\x1b[0mplain\x1b8red\x1b[5;5H\x1b[s\x1b[20;1Hlow\x1b[ukept",
        ),
        // Erasing.
        s(
            "erase_display",
            &format!("{numbered}\x1b[10;5H\x1b[J\x1b[5;5H\x1b[1J"),
        ),
        s(
            "erase_display_all",
            &format!("{numbered}\x1b[2J\x1b[Hafter"),
        ),
        s(
            "erase_line_parts",
            "abcdefghij\x1b[5G\x1b[1K\r\n0123456789\x1b[5G\x1b[K\r\nkeep\x1b[2K!",
        ),
        s("erase_chars", "abcdefgh\r\x1b[2C\x1b[41m\x1b[3X\x1b[0m"),
        s(
            "delete_chars",
            "abcdefgh\r\x1b[2C\x1b[2P\r\n\x1b[44mabcdefgh\r\x1b[P\x1b[0m",
        ),
        s("repeat_char", "a\x1b[5b-\x1b[3b"),
        // Lines and scroll regions.
        s(
            "insert_delete_lines",
            &format!("{numbered}\x1b[3;7r\x1b[5H\x1b[2M\x1b[4H\x1b[L\x1b[r"),
        ),
        s(
            "scroll_up_down",
            &format!("{numbered}\x1b[5;15r\x1b[2S\x1b[T\x1b[r\x1b[Hdone"),
        ),
        s(
            "index_at_margins",
            "\x1b[3;6r\x1b[6Hbottom\n\n\nX\x1b[3HtopY\x1bM\x1bMZ\x1b[r",
        ),
        s("newline_scrolls", &format!("{numbered}{numbered}end")),
        s(
            "origin_mode",
            "\x1b[5;10r\x1b[?6h\x1b[1;1HX\x1b[20;1HY\x1b[?6l\x1b[1;1HZ\x1b[r",
        ),
        s("next_line_ind", "a\x1bEb\x1bDc"),
        // Tabs.
        s(
            "tabs",
            "a\tb\tc\r\n\x1b[3g\x1b[5G\x1bH\x1b[15G\x1bH\r\tx\ty\r\n\t\t\t!\x1b[2Z?",
        ),
        // Wrapping.
        s("autowrap", &"0123456789".repeat(9)),
        s(
            "no_autowrap",
            &format!("\x1b[?7l{}\x1b[?7h", "abcdefghij".repeat(9)),
        ),
        s(
            "pending_wrap",
            &format!(
                "{}\r\n{}\x08X\r\n{}\x1b[Kend",
                "a".repeat(80),
                "b".repeat(80),
                "c".repeat(80)
            ),
        ),
        // Character sets and text.
        s(
            "wide_chars",
            "日本語テキスト\r\n\x1b[78G漢字\r\nab\x1b[2D中\x1b[2D-",
        ),
        s("emoji", "smile 😀 ok\r\nflag 🇫🇷 end"),
        s("combining", "e\u{301}te\u{301} cafe\u{301}"),
        s(
            "dec_graphics",
            "\x1b(0lqqqk\r\nx   x\r\nmqqqj\x1b(B done\r\n\x1b)0\x0etqu\x0f tee\r\n\x1b(0\x1b[1;31m`afgjklmnqtuvwxyz{|}~\x1b[0m\x1b(B",
        ),
        s("alignment_test", "\x1b#8\x1b[5;5Hin the Es"),
        // Attributes and colours.
        s(
            "sgr_basic",
            "\x1b[1mbold\x1b[22m \x1b[2mdim\x1b[22m \x1b[3mital\x1b[23m \x1b[4munder\x1b[24m \x1b[7mrev\x1b[27m \x1b[1;3;4;7mall\x1b[0m none",
        ),
        s(
            "sgr_colors",
            "\x1b[31mred\x1b[42mongreen\x1b[39mdef\x1b[49m \x1b[91mbright\x1b[104mbg\x1b[0m \x1b[38;5;202m256\x1b[48;5;17mbg\x1b[0m \x1b[38;2;10;200;30mrgb\x1b[48;2;1;2;3mbg\x1b[0m",
        ),
        s(
            "sgr_colon_forms",
            "\x1b[38:5:99mcolon\x1b[0m \x1b[38:2::1:2:3mrgb\x1b[0m \x1b[4:3mcurly\x1b[0m",
        ),
        s(
            "sgr_reset_parts",
            "\x1b[1;4;31;44mA\x1b[22mB\x1b[24mC\x1b[39mD\x1b[49mE\x1b[mF",
        ),
        // Screens and modes.
        s(
            "alternate_screen",
            "main text\x1b[?1049h\x1b[Halt text\x1b[?1049lback",
        ),
        s(
            "alternate_screen_stays",
            "main text\x1b[?1049h\x1b[2J\x1b[5;5Hon alt",
        ),
        s("alternate_47", "main\x1b[?47halt\x1b[?47l more"),
        s("hidden_cursor", "\x1b[?25lno cursor"),
        s(
            "reverse_video_mode",
            "\x1b[?5hinverse screen\x1b[?5l normal",
        ),
        s("history", &format!("{many}bottom")).with_history(),
    ]
}

/// Resizes: reflow and history kept (the issue's cases 5 and 8).
fn resizes(dir: &std::path::Path) -> Vec<Case> {
    let many: String = (1..=100).map(|i| format!("history line {i}\r\n")).collect();
    vec![
        Case::stream(
            "reflow_long_line",
            format!("{}\r\nDONE", "0123456789".repeat(30)).as_bytes(),
            dir,
        )
        .size(24, 200)
        .steps([
            Step::Wait("DONE"),
            Step::Resize(24, 100),
            Step::Check,
            Step::Resize(24, 200),
        ])
        .with_history(),
        Case::stream(
            "history_through_resizes",
            format!("{many}DONE").as_bytes(),
            dir,
        )
        .steps([
            Step::Wait("DONE"),
            Step::Resize(24, 60),
            Step::Check,
            Step::Resize(30, 80),
            Step::Check,
            Step::Resize(24, 80),
        ])
        .with_history(),
        Case::stream(
            "shrink_keeps_cursor_line",
            format!("{many}prompt$ ").as_bytes(),
            dir,
        )
        .steps([Step::Wait("prompt$"), Step::Resize(10, 80)])
        .with_history(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byte_streams_match_tmux_cell_for_cell() {
    let sbs = SideBySide::start();
    let dir = tempfile::tempdir().unwrap();
    let mut cases = streams(dir.path());
    cases.extend(resizes(dir.path()));
    for c in &mut cases {
        if c.steps.is_empty() {
            c.steps.push(Step::Pause(300));
        }
    }
    all_match(&sbs, "streams", &cases, dir.path(), 8).await;
}

/// Moves the cursor, asks where it is, and prints the answer it parsed.
const CPR: &str = r#"
import os, re, select, tty
tty.setraw(0)
os.write(1, b"\x1b[2J\x1b[7;13Hhere\x1b[6n")
got = b""
while not re.search(rb"\x1b\[\d+;\d+R", got) and select.select([0], [], [], 5)[0]:
    got += os.read(0, 64)
m = re.search(rb"\x1b\[(\d+);(\d+)R", got)
os.write(1, b"\r\ncursor at " + (m.group(1) + b"," + m.group(2) if m else b"?") + b"\r\n")
os.system("sleep 600")
"#;

/// Files the programs open, the same for both sides.
fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let notes: String = (1..=40)
        .map(|i| format!("line {i} of the notes, with some words to move over\n"))
        .collect();
    std::fs::write(p.join("notes.txt"), format!("first line\n{notes}")).unwrap();
    let big: String = (1..=300)
        .map(|i| format!("row {i:03} of a long file\n"))
        .collect();
    std::fs::write(p.join("big.txt"), big).unwrap();
    std::fs::write(
        p.join("colours.txt"),
        "\x1b[1;31mred bold\x1b[0m plain \x1b[4;32munderlined green\x1b[0m\n\x1b[7mreverse\x1b[0m\n",
    )
    .unwrap();
    std::fs::create_dir_all(p.join("home")).unwrap();
    for f in ["alpha.txt", "beta.rs", "gamma.md"] {
        std::fs::write(p.join(f), f).unwrap();
    }
    dir
}

fn programs(dir: &std::path::Path) -> Vec<Case> {
    use KeyCode as K;
    let home = dir.join("home");
    let home = home.to_str().unwrap();
    let vim = ["vim", "-u", "NONE", "-i", "NONE", "-N", "-n"];
    let with = |argv: &[&str], extra: &[&str]| -> Vec<String> {
        argv.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let case = |name: &str, argv: Vec<String>| {
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        Case::new(name, &argv).env("HOME", home)
    };
    vec![
        // Home and End (the issue's case 1), then a mouse click (case 11).
        case("vim_keys_and_mouse", with(&vim, &["notes.txt"])).steps([
            Step::Wait("first line"),
            key("End", K::End),
            Step::Text("aX\x1b"),
            key("Home", K::Home),
            Step::Text("iY\x1b"),
            Step::Check,
            Step::Text(":set number\r"),
            Step::Check,
            Step::Text(":set mouse=a\r"),
            Step::Pause(200),
            Step::Click(12, 4),
            Step::Text("iZ\x1b"),
            Step::Check,
            Step::WheelDown(10, 10),
            Step::WheelDown(10, 10),
            Step::Check,
            Step::Text("Go\x1b"),
            key("PageUp", K::PageUp),
        ]),
        // A big window from the first frame (case 6).
        case("vim_big_window", with(&vim, &["notes.txt"]))
            .size(52, 202)
            .steps([Step::Wait("first line"), Step::Text(":split\r")]),
        case(
            "less_home_end_search",
            vec!["less".into(), "big.txt".into()],
        )
        .steps([
            Step::Wait("row 001"),
            key("End", K::End),
            Step::Wait("row 300"),
            Step::Check,
            key("Home", K::Home),
            Step::Wait("row 001"),
            Step::Check,
            Step::Text("/row 01\r"),
        ]),
        case(
            "less_colours",
            vec!["less".into(), "-R".into(), "colours.txt".into()],
        )
        .steps([Step::Wait("reverse")]),
        case("htop_help", vec!["htop".into()]).steps([
            Step::Pause(1500),
            key("F1", K::F(1)),
            Step::Wait("trace syscalls"),
        ]),
        case(
            "dialog_menu",
            with(
                &["dialog", "--menu", "Pick one", "15", "50", "4"],
                &["a", "Apple", "b", "Banana", "c", "Cherry", "d", "Date"],
            ),
        )
        .steps([
            Step::Wait("Apple"),
            Step::Check,
            key("Down", K::Down),
            key("Down", K::Down),
        ]),
        case(
            "dialog_checklist",
            with(
                &["dialog", "--checklist", "Choose", "12", "40", "3"],
                &["1", "One", "on", "2", "Two", "off", "3", "Three", "off"],
            ),
        )
        .steps([
            Step::Wait("Three"),
            Step::Text(" "),
            key("Down", K::Down),
            Step::Text(" "),
        ]),
        case("mc_panels", vec!["mc".into(), "-u".into()]).steps([
            Step::Wait("alpha.txt"),
            Step::Check,
            key("Down", K::Down),
            key("Tab", K::Tab),
        ]),
        // A program that asks where the cursor is (DSR 6) and waits for the answer (the
        // issue's case 3: crossterm's `cursor::position()` and line editors block on it).
        case(
            "cursor_position_query",
            vec!["python3".into(), "-c".into(), CPR.into()],
        )
        .steps([Step::Wait("cursor at")]),
        case("python_repl", vec!["python3".into(), "-q".into()]).steps([
            Step::Wait(">>>"),
            Step::Text("x = 'abc'\r"),
            Step::Text("print(x * 40)\r"),
            key("Up", K::Up),
            key("Home", K::Home),
            Step::Text("y = 1; "),
            key("End", K::End),
            Step::Text("  # end\r"),
            Step::Wait("# end"),
        ]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_programs_match_tmux_cell_for_cell() {
    let sbs = SideBySide::start();
    let dir = workdir();
    let cases = programs(dir.path());
    all_match(&sbs, "programs", &cases, dir.path(), 3).await;
}

/// The agent CLIs, offline against their model stand-ins (`tests/agents/`): the start
/// screen, then a half-typed prompt (their answers carry a random verb and a timer, so a
/// finished turn is not compared).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_clis_match_tmux_cell_for_cell() {
    use common::agent_cli::{
        CLAUDE_API_KEY, ONE_AT_A_TIME, Standin, claude_env, gemini_env, installed, prepare_home,
    };
    let _one = ONE_AT_A_TIME.lock().await;
    let sbs = SideBySide::start();
    let dir = tempfile::tempdir().unwrap();
    let proj = dir.path().join("proj");
    std::fs::create_dir_all(&proj).unwrap();
    let mut cases = Vec::new();
    let mut standins = Vec::new();
    let typed = [
        Step::Text("half typed, not sent"),
        Step::Wait("half typed, not sent"),
    ];
    // Both with 24-bit colour, and neither told it runs in tmux (Claude Code then prints a
    // hint about tmux's focus events).
    let agent = |name: &str, env: serde_json::Value| {
        let mut case = Case::new(name, &["env", "-u", "TMUX", name])
            .size(30, 100)
            .env("COLORTERM", "truecolor");
        for (k, v) in env.as_object().unwrap() {
            case = case.env(k, v.as_str().unwrap());
        }
        case
    };
    if installed("claude", "@anthropic-ai/claude-code") {
        let standin = Standin::start("model_standin.py", dir.path());
        let home = dir.path().join("claude-home");
        prepare_home(
            "claude_home.py",
            &home,
            &proj,
            &["--api-key", CLAUDE_API_KEY],
        );
        cases.push(
            agent("claude", claude_env(&home, &standin))
                .steps([Step::Wait("for shortcuts"), Step::Check])
                .steps(typed.clone()),
        );
        standins.push(standin);
    }
    if installed("gemini", "@google/gemini-cli") {
        let standin = Standin::start("gemini_standin.py", dir.path());
        let home = dir.path().join("gemini-home");
        prepare_home(
            "gemini_home.py",
            &home,
            &proj,
            &["--port", &standin.port.to_string()],
        );
        cases.push(
            agent("gemini", gemini_env(&home, &standin))
                .steps([Step::Wait("Type your message"), Step::Check])
                .steps(typed.clone()),
        );
        standins.push(standin);
    }
    all_match(&sbs, "agents", &cases, &proj, 1).await;
}
