//! The TUI drawn into ratatui's `TestBackend` and compared with insta snapshots: layouts,
//! zoom, border titles, the status bar with an alert, the help overlay, the pending popup.

use std::time::{Instant, SystemTime};

use brokertui::broker::Severity;
use brokertui::config::PrefixKey;
use brokertui::protocol::requests::pending::PendingEntry;
use brokertui::protocol::{AgentReport, AgentState, ExitedPayload, SessionMode};
use brokertui::ui::draw::{areas, draw};
use brokertui::ui::state::{Alert, App, ClientMode, Overlay};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;

fn app(names: &[&str], w: u16, h: u16) -> App {
    let mut app = App::new(PrefixKey::CTRL_B, 100);
    app.area = areas(Rect::new(0, 0, w, h)).0;
    for (i, name) in names.iter().enumerate() {
        app.add_pane(name);
        let pane = app.pane_mut(name).unwrap();
        pane.feed
            .mirror
            .parser
            .process(format!("$ echo {name}\r\n{name} #{i}\r\n$ ").as_bytes());
    }
    app
}

fn render(app: &App, w: u16, h: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| draw(f, app)).unwrap();
    format!("{}", terminal.backend())
}

#[test]
fn one_pane_fills_the_screen() {
    insta::assert_snapshot!(render(&app(&["solo"], 60, 12), 60, 12));
}

#[test]
fn two_panes_side_by_side() {
    insta::assert_snapshot!(render(&app(&["alice", "bob"], 80, 12), 80, 12));
}

#[test]
fn four_panes_in_a_grid() {
    insta::assert_snapshot!(render(&app(&["a", "b", "c", "d"], 80, 16), 80, 16));
}

#[test]
fn seven_panes_last_row_stretches() {
    let names = ["w1", "w2", "w3", "w4", "w5", "w6", "w7"];
    insta::assert_snapshot!(render(&app(&names, 90, 22), 90, 22));
}

#[test]
fn zoom_shows_only_the_focused_pane() {
    let mut a = app(&["a", "b", "c"], 60, 10);
    a.focus = 1;
    a.zoom = true;
    insta::assert_snapshot!(render(&a, 60, 10));
}

#[test]
fn border_titles_show_mode_pending_client_mode_and_exit() {
    let mut a = app(&["agent", "shell", "gone"], 100, 10);
    a.focus = 0;
    a.mode = ClientMode::Drive;
    a.panes[0].mode = SessionMode::Human;
    a.panes[0].undelivered = 2;
    a.panes[2].exit = Some(ExitedPayload {
        code: Some(3),
        signal: None,
    });
    insta::assert_snapshot!(render(&a, 100, 10));
}

#[test]
fn status_bar_shows_an_alert() {
    let mut a = app(&["alice", "bob"], 100, 8);
    a.push_alert(
        Alert {
            severity: Severity::Warning,
            worker: Some("bob".into()),
            op: "snapshot".into(),
            message: "bob did not answer snapshot within 5000ms".into(),
            at: SystemTime::now(),
        },
        Instant::now(),
    );
    insta::assert_snapshot!(render(&a, 100, 8));
}

#[test]
fn help_overlay_lists_every_key() {
    let mut a = app(&["alice"], 100, 32);
    a.overlay = Some(Overlay::Help);
    insta::assert_snapshot!(render(&a, 100, 32));
}

#[test]
fn pending_popup_lists_messages_oldest_first() {
    let mut a = app(&["alice", "bob"], 100, 14);
    a.overlay = Some(Overlay::Pending {
        name: "bob".into(),
        entries: vec![
            PendingEntry {
                id: "1".into(),
                from: "alice".into(),
                body: "first".into(),
                sent_at_ms: 1,
                queued_at_ms: 2,
                reason: None,
            },
            PendingEntry {
                id: "2".into(),
                from: "carol".into(),
                body: "second\nline".into(),
                sent_at_ms: 3,
                queued_at_ms: 4,
                reason: Some("it is blocked: screen shows a permission dialog".into()),
            },
        ],
    });
    insta::assert_snapshot!(render(&a, 100, 14));
}

#[test]
fn agent_states_badges_and_the_needs_you_counter() {
    let mut a = app(&["claude", "codex", "sh"], 120, 12);
    for (name, state, flagged) in [
        ("claude", AgentState::Blocked, true),
        ("codex", AgentState::Working, false),
        ("sh", AgentState::Idle, true),
    ] {
        let p = a.pane_mut(name).unwrap();
        p.agent = AgentReport {
            kind: name.into(),
            state,
            reason: "screen shows a permission dialog".into(),
            ..Default::default()
        };
        p.attention = flagged;
    }
    insta::assert_snapshot!(render(&a, 120, 12));
}

#[test]
fn an_unknown_key_after_the_prefix_says_so() {
    use brokertui::ui::state::{Attached, ClientMode};
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let mut a = app(&["alice"], 100, 8);
    a.mode = ClientMode::Drive;
    a.attached = Some(Attached {
        name: "alice".into(),
        restore: brokertui::protocol::SessionMode::Relay,
    });
    let ctrl_b = KeyEvent::new(KeyCode::Char('b'), KeyModifiers::CONTROL);
    let q = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
    assert!(brokertui::ui::input::handle_key(&mut a, ctrl_b).is_empty());
    let typed = brokertui::ui::input::handle_key(&mut a, q);
    assert!(typed.is_empty(), "nothing reaches the program");
    insta::assert_snapshot!(render(&a, 100, 8));
}

#[test]
fn a_tiny_terminal_degrades_visibly() {
    use brokertui::ui::state::Overlay;
    // 20x6: three panes do not fit; the focused one is shown, and the compose line stays
    // visible.
    let mut a = app(&["alice", "bob", "carol"], 20, 6);
    insta::assert_snapshot!("tiny_panes", render(&a, 20, 6));
    a.overlay = Some(Overlay::Compose {
        to: "bob".into(),
        text: "hi bob".into(),
    });
    insta::assert_snapshot!("tiny_compose", render(&a, 20, 6));
    // Smaller than any pane can be: said so, not a blank screen.
    let b = app(&["alice"], 8, 3);
    insta::assert_snapshot!("too_small", render(&b, 8, 3));
}

fn key(c: crossterm::event::KeyCode) -> crossterm::event::KeyEvent {
    crossterm::event::KeyEvent::new(c, crossterm::event::KeyModifiers::NONE)
}

fn type_keys(app: &mut App, text: &str) {
    for ch in text.chars() {
        let code = match ch {
            '\r' => crossterm::event::KeyCode::Enter,
            c => crossterm::event::KeyCode::Char(c),
        };
        brokertui::ui::input::handle_key(app, key(code));
    }
}

const REVIEWED: &str = "diff --git a/src/lib.rs b/src/lib.rs
index 1111111..2222222 100644
--- a/src/lib.rs
+++ b/src/lib.rs
@@ -1,4 +1,5 @@
 pub fn add(a: i32, b: i32) -> i32 {
-    a + b
+    let sum = a + b;
+    sum
 }
 
diff --git a/notes.md b/notes.md
new file mode 100644
--- /dev/null
+++ b/notes.md
@@ -0,0 +1,2 @@
+# Notes
+Remember the tests.
";

fn reviewing(names: &[&str]) -> App {
    use brokertui::workspace::diff::{Diff, parse};
    let mut a = app(names, 100, 24);
    let diff = Diff {
        base: "0123456789abcdef".into(),
        files: parse(REVIEWED),
        text: REVIEWED.into(),
    };
    let review = brokertui::ui::review::Review::new(names[0], diff, Vec::new());
    a.overlay = Some(Overlay::Review(Box::new(review)));
    a
}

#[test]
fn the_review_popup_shows_files_hunks_and_comments_on_lines() {
    let mut a = reviewing(&["agent"]);
    // Down to the added `let sum` line, comment; then the first line of notes.md.
    type_keys(
        &mut a,
        "jjcname it for what it holds\r]crun them before you push\r",
    );
    insta::assert_snapshot!(render(&a, 100, 24));
}

#[test]
fn the_review_popup_while_a_comment_is_written() {
    let mut a = reviewing(&["agent"]);
    type_keys(&mut a, "jcwhy not");
    insta::assert_snapshot!(render(&a, 100, 24));
}

#[test]
fn a_review_sends_every_comment_as_one_message_and_keeps_unsent_ones() {
    use brokertui::ui::state::Action;
    let mut a = reviewing(&["agent"]);
    type_keys(&mut a, "jjcfirst\r]csecond\r");
    // Closed unsent: the comments come back with the next review of the same worker.
    brokertui::ui::input::handle_key(&mut a, key(crossterm::event::KeyCode::Esc));
    assert!(a.overlay.is_none());
    let drafts = a.review_drafts.get("agent").cloned().unwrap();
    assert_eq!(drafts.len(), 2);
    let Overlay::Review(review) = reviewing(&["agent"]).overlay.unwrap() else {
        unreachable!()
    };
    let again = brokertui::ui::review::Review::new("agent", review.diff.clone(), drafts);
    a.overlay = Some(Overlay::Review(Box::new(again)));
    let actions =
        brokertui::ui::input::handle_key(&mut a, key(crossterm::event::KeyCode::Char('S')));
    assert_eq!(
        actions,
        vec![Action::Send {
            to: "agent".into(),
            body: "Review of your changes:\n- src/lib.rs:2 — first\n- notes.md:1 — second".into(),
        }]
    );
    assert!(a.overlay.is_none());
    assert!(!a.review_drafts.contains_key("agent"));
}

#[test]
fn releasing_a_worker_in_a_worktree_asks_what_becomes_of_it() {
    let mut a = app(&["agent"], 90, 14);
    a.panes[0].worktree = Some(brokertui::workspace::Worktree {
        path: "/src/proj.worktrees/agent".into(),
        branch: "brokertui/agent".into(),
        base: "0123456789".into(),
        repo: "/src/proj".into(),
        subdir: Default::default(),
    });
    a.panes[0].restored = true;
    type_keys(&mut a, "x");
    insta::assert_snapshot!(render(&a, 90, 14));
}

#[test]
fn the_new_worker_dialog_offers_a_worktree() {
    let mut a = app(&["a"], 70, 10);
    type_keys(&mut a, "nclaude");
    brokertui::ui::input::handle_key(&mut a, key(crossterm::event::KeyCode::Tab));
    insta::assert_snapshot!(render(&a, 70, 10));
}

fn render_buffer(app: &App, w: u16, h: u16) -> ratatui::buffer::Buffer {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| draw(f, app)).unwrap();
    terminal.backend().buffer().clone()
}

/// A pane with 40 lines of history, so copy mode has scrollback to move in.
fn with_history() -> App {
    let mut a = app(&["log"], 60, 12);
    // The screen as large as the pane shows it, as the TUI keeps it.
    let (rows, cols) = a.pty_size_of("log").unwrap();
    a.panes[0].feed.set_size(rows, cols);
    let text: String = (1..=40).map(|i| format!("entry {i:02} ok\r\n")).collect();
    a.panes[0].feed.mirror.parser.process(text.as_bytes());
    a
}

#[test]
fn copy_mode_shows_its_selection_and_position() {
    let mut a = with_history();
    // Into copy mode, up two lines, select two lines by line.
    type_keys(&mut a, "[kkVk");
    let buf = render_buffer(&a, 60, 12);
    insta::assert_snapshot!(render(&a, 60, 12));
    // The selected rows are painted (blue), the others are not.
    let row_of = |needle: &str| {
        (0..12u16)
            .find(|&y| {
                (0..60u16)
                    .map(|x| buf[(x, y)].symbol())
                    .collect::<String>()
                    .contains(needle)
            })
            .unwrap()
    };
    let selected = row_of("entry 39");
    assert_eq!(buf[(3, selected)].bg, ratatui::style::Color::Blue);
    assert_ne!(buf[(3, row_of("entry 37"))].bg, ratatui::style::Color::Blue);
    let actions =
        brokertui::ui::input::handle_key(&mut a, key(crossterm::event::KeyCode::Char('y')));
    assert_eq!(
        actions,
        vec![brokertui::ui::state::Action::Copy {
            text: "entry 38 ok\nentry 39 ok".into()
        }]
    );
    assert!(a.copy.is_none(), "y leaves copy mode");
}

#[test]
fn search_highlights_every_match_and_goes_to_the_nearest() {
    let mut a = with_history();
    type_keys(&mut a, "/entry 3\r");
    let buf = render_buffer(&a, 60, 12);
    insta::assert_snapshot!(render(&a, 60, 12));
    let highlighted: Vec<String> = (1..10u16)
        .filter(|&y| buf[(1, y)].bg == ratatui::style::Color::Yellow)
        .map(|y| (1..12u16).map(|x| buf[(x, y)].symbol()).collect())
        .collect();
    assert!(
        highlighted.iter().all(|l| l.starts_with("entry 3")),
        "{highlighted:?}"
    );
    assert!(!highlighted.is_empty());
    // Backwards from the bottom, the nearest match is entry 39; n goes on to 38.
    type_keys(&mut a, "?entry 3\r");
    let pos = a.copy.as_ref().unwrap().cursor;
    type_keys(&mut a, "n");
    assert_eq!(a.copy.as_ref().unwrap().cursor.0 + 1, pos.0);
}

#[test]
fn each_layout_arranges_the_panes() {
    let mut a = app(&["main", "b", "c", "d"], 80, 16);
    let mut shots = Vec::new();
    for _ in 0..5 {
        shots.push(format!("{:?}\n{}", a.arrangement, render(&a, 80, 16)));
        type_keys(&mut a, " ");
    }
    assert_eq!(a.arrangement, brokertui::ui::layout::Arrangement::Tiled);
    insta::assert_snapshot!(shots.join("\n"));
}

#[test]
fn the_keyboard_resizes_the_focused_pane() {
    let mut a = app(&["left", "right"], 80, 10);
    let before = a.layout()[0].1.width;
    type_keys(&mut a, ">>");
    let after = a.layout()[0].1.width;
    assert!(after > before, "{before} -> {after}");
    type_keys(&mut a, " "); // main + stack: the main share grows
    let main = a.layout()[0].1.width;
    type_keys(&mut a, ">");
    assert!(a.layout()[0].1.width > main);
}

#[test]
fn a_label_shows_before_the_name() {
    let mut a = app(&["w1", "w2"], 80, 8);
    type_keys(&mut a, ",tests\r");
    insta::assert_snapshot!(render(&a, 80, 8));
}

#[test]
fn empty_inputs_say_what_is_missing_and_stay_open() {
    let mut a = app(&["a"], 70, 10);
    type_keys(&mut a, "c\r");
    assert!(matches!(a.overlay, Some(Overlay::Compose { .. })));
    assert_eq!(
        a.note.as_ref().unwrap().0,
        "type a message first (Esc cancels)"
    );
    brokertui::ui::input::handle_key(&mut a, key(crossterm::event::KeyCode::Esc));
    type_keys(&mut a, "n\r");
    assert!(matches!(a.overlay, Some(Overlay::NewWorker { .. })));
    assert!(
        a.note
            .as_ref()
            .unwrap()
            .0
            .starts_with("type a command first")
    );
}

#[test]
fn a_new_worker_takes_the_focus_and_r_says_when_nothing_exited() {
    let mut a = app(&["a", "b"], 70, 10);
    a.focus_new = Some("c".into());
    a.add_pane("c");
    assert_eq!(a.focused_name().as_deref(), Some("c"));
    assert!(type_actions(&mut a, "R").is_empty());
    assert!(a.note.as_ref().unwrap().0.contains("c is running"));
    // Scrolled back, v in view goes back to the live screen.
    a.panes[2].scroll = 5;
    type_keys(&mut a, "v");
    assert_eq!(a.panes[2].scroll, 0);
}

fn type_actions(app: &mut App, text: &str) -> Vec<brokertui::ui::state::Action> {
    text.chars()
        .flat_map(|c| {
            brokertui::ui::input::handle_key(app, key(crossterm::event::KeyCode::Char(c)))
        })
        .collect()
}

fn mouse(
    kind: crossterm::event::MouseEventKind,
    column: u16,
    row: u16,
) -> crossterm::event::MouseEvent {
    crossterm::event::MouseEvent {
        kind,
        column,
        row,
        modifiers: crossterm::event::KeyModifiers::NONE,
    }
}

#[test]
fn a_mouse_drag_selects_within_its_pane_and_copies_on_release() {
    use crossterm::event::{MouseButton, MouseEventKind as K};
    let mut a = app(&["left", "right"], 80, 10);
    for name in ["left", "right"] {
        let (rows, cols) = a.pty_size_of(name).unwrap();
        let pane = a.pane_mut(name).unwrap();
        pane.feed.set_size(rows, cols);
        pane.feed
            .mirror
            .parser
            .process(format!("\x1b[2J\x1b[Hone {name} two\r\nthree four\r\n").as_bytes());
    }
    let h = brokertui::ui::input::handle_mouse;
    // From "one" in the left pane, dragged far into the right pane: the selection stops at
    // the left pane's edge, on its second row.
    assert!(h(&mut a, mouse(K::Down(MouseButton::Left), 1, 1)).is_empty());
    assert!(h(&mut a, mouse(K::Drag(MouseButton::Left), 70, 2)).is_empty());
    assert!(a.copy.is_some());
    let actions = h(&mut a, mouse(K::Up(MouseButton::Left), 70, 2));
    assert_eq!(
        actions,
        vec![brokertui::ui::state::Action::Copy {
            text: "one left two\nthree four".into()
        }]
    );
    assert!(a.copy.is_none());
    // A double click copies the word under it, a triple click its line.
    h(&mut a, mouse(K::Down(MouseButton::Left), 6, 1));
    let word = h(&mut a, mouse(K::Down(MouseButton::Left), 6, 1));
    assert_eq!(
        word,
        vec![brokertui::ui::state::Action::Copy {
            text: "left".into()
        }]
    );
    let line = h(&mut a, mouse(K::Down(MouseButton::Left), 6, 1));
    assert_eq!(
        line,
        vec![brokertui::ui::state::Action::Copy {
            text: "one left two".into()
        }]
    );
}

#[test]
fn dragging_a_border_resizes_the_panes_beside_it() {
    use crossterm::event::{MouseButton, MouseEventKind as K};
    let mut a = app(&["left", "right"], 80, 10);
    let border = a.layout()[0].1.right() - 1;
    let h = brokertui::ui::input::handle_mouse;
    h(&mut a, mouse(K::Down(MouseButton::Left), border, 4));
    h(&mut a, mouse(K::Drag(MouseButton::Left), 59, 4));
    h(&mut a, mouse(K::Up(MouseButton::Left), 59, 4));
    assert_eq!(a.layout()[0].1.width, 60);
    assert_eq!(a.layout()[1].1.width, 20);
}

#[test]
fn the_wheel_over_a_full_screen_program_says_why_nothing_scrolls() {
    use crossterm::event::MouseEventKind as K;
    let mut a = app(&["less"], 60, 10);
    a.panes[0]
        .feed
        .mirror
        .parser
        .process(b"\x1b[?1049h\x1b[Hpage one");
    brokertui::ui::input::handle_mouse(&mut a, mouse(K::ScrollUp, 5, 3));
    assert_eq!(a.panes[0].scroll, 0);
    assert!(
        a.note.as_ref().unwrap().0.contains("draws its own screen"),
        "{:?}",
        a.note
    );
}
