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
