//! The same program in a brokertui worker and in a tmux pane of the same size, fed the same
//! keys, and their screens compared cell by cell (text, colours, attributes, cursor, title,
//! history). tmux is the reference: what a program shows there is what it must show here.
//!
//! tmux's screen is read with `capture-pane -e -p -N` (text and attributes) and `display -p`
//! (cursor, title, alternate screen); brokertui's with an `ansi` snapshot. Both are replayed
//! into a vt100 parser of the same size and compared. One limit of the reference: tmux does not
//! report the cells after the last one written on a line (an erase with a background colour
//! leaves them coloured, but `capture-pane` stops before them), so there only the text (blank)
//! is compared.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::serve::Serve;

/// One thing done to both panes.
#[derive(Clone, Debug)]
pub enum Step {
    /// Typed as it is (tmux `send-keys -l`).
    Text(&'static str),
    /// A named key: tmux's name for it, and the key event the TUI would read.
    Key(&'static str, KeyCode, KeyModifiers),
    /// A left click at (col, row) inside the pane, reported as the program asked.
    Click(u16, u16),
    /// The wheel turned down once at (col, row).
    WheelDown(u16, u16),
    /// Until both screens show this text.
    Wait(&'static str),
    Resize(u16, u16),
    Pause(u64),
    /// Both screens must match (eventually: each program draws at its own pace).
    Check,
}

pub fn key(name: &'static str, code: KeyCode) -> Step {
    Step::Key(name, code, KeyModifiers::NONE)
}

/// A program run the same way in both, and what is done to it.
pub struct Case {
    pub name: String,
    pub rows: u16,
    pub cols: u16,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub steps: Vec<Step>,
    /// Compare the history too (both keep 2000 rows).
    pub history: bool,
}

impl Case {
    pub fn new(name: &str, argv: &[&str]) -> Case {
        Case {
            name: name.into(),
            rows: 24,
            cols: 80,
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: Vec::new(),
            steps: Vec::new(),
            history: false,
        }
    }

    pub fn size(mut self, rows: u16, cols: u16) -> Case {
        (self.rows, self.cols) = (rows, cols);
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Case {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn steps(mut self, steps: impl IntoIterator<Item = Step>) -> Case {
        self.steps.extend(steps);
        self
    }

    pub fn with_history(mut self) -> Case {
        self.history = true;
        self
    }

    /// A program that writes `bytes` and waits: the byte-stream cases.
    pub fn stream(name: &str, bytes: &[u8], dir: &Path) -> Case {
        let file = dir.join(format!("{name}.bin"));
        std::fs::write(&file, bytes).unwrap();
        let script = format!("cat '{}'; exec sleep 600", file.display());
        Case::new(name, &["sh", "-c", &script])
    }
}

/// One cell as both sides are compared on.
#[derive(Clone, PartialEq)]
struct Cell {
    text: String,
    fg: vt100::Color,
    bg: vt100::Color,
    attrs: [bool; 5],
}

impl std::fmt::Debug for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} fg {:?} bg {:?}", self.text, self.fg, self.bg)?;
        for (on, name) in self
            .attrs
            .iter()
            .zip(["bold", "dim", "italic", "underline", "inverse"])
        {
            if *on {
                write!(f, " {name}")?;
            }
        }
        Ok(())
    }
}

/// A screen read from one side, with the rows of history above it.
#[derive(Clone, Debug, PartialEq)]
pub struct Picture {
    lines: Vec<Vec<Cell>>,
    /// Per line, how many cells the reference reported (tmux stops at the last written one).
    known: Vec<usize>,
    history: usize,
    cursor: (u16, u16),
    cursor_visible: bool,
    alternate: bool,
    title: String,
}

fn cells_of(screen: &vt100::Screen, row: u16, cols: u16) -> Vec<Cell> {
    (0..cols)
        .map(|c| match screen.cell(row, c) {
            // A cleared cell and a written space look the same.
            Some(cell) => Cell {
                text: match cell.contents() {
                    _ if cell.is_wide_continuation() => String::new(),
                    "" => " ".to_string(),
                    t => t.to_string(),
                },
                fg: cell.fgcolor(),
                bg: cell.bgcolor(),
                attrs: [
                    cell.bold(),
                    cell.dim(),
                    cell.italic(),
                    cell.underline(),
                    cell.inverse(),
                ],
            },
            None => Cell {
                text: " ".to_string(),
                fg: vt100::Color::Default,
                bg: vt100::Color::Default,
                attrs: [false; 5],
            },
        })
        .collect()
}

/// The title a replayed stream set.
#[derive(Default)]
struct Title(String);

impl vt100::Callbacks for Title {
    fn set_window_title(&mut self, _: &mut vt100::Screen, title: &[u8]) {
        self.0 = String::from_utf8_lossy(title).into_owned();
    }
}

/// A private tmux server (its own socket, no config, no status line).
pub struct Tmux {
    socket: String,
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").output();
    }
}

impl Tmux {
    pub fn start() -> Tmux {
        let socket = format!("brokertui-fid-{}-{}", std::process::id(), rand_suffix());
        let t = Tmux { socket };
        t.run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "keep",
            "sleep 3600",
        ]);
        t.run(&["set", "-g", "status", "off"]);
        t.run(&["set", "-g", "history-limit", "2000"]);
        t
    }

    /// A tmux command. The first one starts the server, whose panes get its environment:
    /// without the CI variables, which brokertui also keeps from its workers (with `CI` set,
    /// agent CLIs draw without colour, or nothing until they exit).
    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]).env_remove("TMUX");
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k == "CI" || k == "CONTINUOUS_INTEGRATION" || k.starts_with("CI_") {
                c.env_remove(&*k);
            }
        }
        c
    }

    fn run(&self, args: &[&str]) -> String {
        self.try_run(args).unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_run(&self, args: &[&str]) -> Result<String, String> {
        let out = self.cmd().args(args).output().expect("tmux runs");
        if !out.status.success() {
            return Err(format!(
                "tmux {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn open(&self, case: &Case, cwd: &Path) {
        let (rows, cols) = (case.rows.to_string(), case.cols.to_string());
        let mut args: Vec<String> = ["new-session", "-d", "-s", &case.name, "-x", &cols, "-y"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.push(rows);
        args.extend(["-c".into(), cwd.display().to_string()]);
        for (k, v) in &case.env {
            args.extend(["-e".into(), format!("{k}={v}")]);
        }
        args.extend(case.argv.iter().cloned());
        self.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }

    /// The pane's screen, or why there is none (its program ended and took the pane).
    fn capture(&self, name: &str, history: bool) -> Result<Picture, String> {
        let info = self.try_run(&[
            "display",
            "-p",
            "-t",
            name,
            "#{pane_width} #{pane_height} #{cursor_x} #{cursor_y} #{cursor_flag} \
             #{alternate_on} #{history_size} #{pane_title}",
        ])?;
        let f: Vec<&str> = info.trim_end_matches('\n').splitn(8, ' ').collect();
        if f.len() < 7 {
            return Err(format!("the tmux pane {name} is gone (its program exited)"));
        }
        let n = |i: usize| f[i].parse::<usize>().unwrap_or(0);
        let (cols, rows, hist) = (n(0), n(1), if history { n(6) } else { 0 });
        let mut args = vec!["capture-pane", "-p", "-e", "-N", "-t", name];
        if history {
            args.extend(["-S", "-"]);
        }
        let text = self.run(&args);
        let total = hist + rows;
        let mut p = vt100::Parser::new(total as u16, cols as u16, 0);
        // tmux marks line-drawing cells with SO / SI around their letters.
        p.process(b"\x1b)0");
        let mut known = Vec::new();
        for (i, line) in text.split('\n').take(total).enumerate() {
            p.process(format!("\x1b[{};1H", i + 1).as_bytes());
            p.process(line.as_bytes());
            let s = p.screen();
            let (_, col) = s.cursor_position();
            let last = s
                .cell(i as u16, col)
                .is_some_and(|c| c.has_contents() || c.bgcolor() != vt100::Color::Default);
            known.push(usize::from(col) + usize::from(last && usize::from(col) + 1 == cols));
        }
        known.resize(total, 0);
        let s = p.screen();
        Ok(Picture {
            lines: (0..total as u16)
                .map(|r| cells_of(s, r, cols as u16))
                .collect(),
            known,
            history: hist,
            cursor: (n(3) as u16, n(2) as u16),
            cursor_visible: f[4] == "1",
            alternate: f[5] == "1",
            title: f.get(7).unwrap_or(&"").to_string(),
        })
    }

    fn step(&self, name: &str, step: &Step) {
        match step {
            Step::Text(t) => {
                self.run(&["send-keys", "-t", name, "-l", t]);
            }
            Step::Key(k, ..) => {
                self.run(&["send-keys", "-t", name, k]);
            }
            Step::Click(col, row) | Step::WheelDown(col, row) => {
                let sgr = self.run(&["display", "-p", "-t", name, "#{mouse_sgr_flag}"]);
                let wheel = matches!(step, Step::WheelDown(..));
                let bytes = mouse_bytes(*col, *row, sgr.trim() == "1", wheel);
                let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
                let mut args = vec!["send-keys", "-t", name, "-H"];
                args.extend(hex.iter().map(String::as_str));
                self.run(&args);
            }
            Step::Resize(rows, cols) => {
                self.run(&[
                    "resize-window",
                    "-t",
                    name,
                    "-x",
                    &cols.to_string(),
                    "-y",
                    &rows.to_string(),
                ]);
            }
            Step::Wait(_) | Step::Pause(_) | Step::Check => {}
        }
    }
}

/// What xterm sends for a left click (press and release) or one turn of the wheel down at
/// (col, row), 0-based.
fn mouse_bytes(col: u16, row: u16, sgr: bool, wheel: bool) -> Vec<u8> {
    let (x, y) = (col + 1, row + 1);
    match (sgr, wheel) {
        (true, false) => format!("\x1b[<0;{x};{y}M\x1b[<0;{x};{y}m").into_bytes(),
        (true, true) => format!("\x1b[<65;{x};{y}M").into_bytes(),
        (false, wheel) => {
            let enc = |v: u16| u8::try_from(v + 32).unwrap();
            let mut out = vec![
                0x1b,
                b'[',
                b'M',
                if wheel { 32 + 65 } else { 32 },
                enc(x),
                enc(y),
            ];
            if !wheel {
                out.extend([0x1b, b'[', b'M', 35, enc(x), enc(y)]);
            }
            out
        }
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(Instant::now().elapsed().as_nanos() as u64);
    h.finish() % 1_000_000
}

/// Both sides of the suite: one broker, one tmux server.
pub struct SideBySide {
    pub serve: Serve,
    pub tmux: Tmux,
}

impl SideBySide {
    pub fn start() -> SideBySide {
        assert!(
            Command::new("tmux").arg("-V").output().is_ok(),
            "tmux is required for the fidelity suite (apt-get install -y tmux)"
        );
        SideBySide {
            serve: Serve::start(&[]),
            tmux: Tmux::start(),
        }
    }

    pub async fn open(&self, case: &Case, cwd: &Path) {
        let env: serde_json::Map<String, serde_json::Value> = case
            .env
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        let (st, v) = self
            .serve
            .call(
                Method::POST,
                "/api/spawn",
                Some(
                    json!({"name": case.name, "cmd": case.argv, "cwd": cwd, "env": env,
                            "rows": case.rows, "cols": case.cols}),
                ),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{}: {v}", case.name);
        self.tmux.open(case, cwd);
    }

    pub async fn close(&self, case: &Case) {
        let _ = self
            .serve
            .call(Method::DELETE, &format!("/api/spawned/{}", case.name), None)
            .await;
        let _ = self
            .tmux
            .cmd()
            .args(["kill-session", "-t", &case.name])
            .output();
    }

    /// brokertui's screen (with `history` rows of scrollback) replayed into a parser, and
    /// how many history rows it holds.
    async fn our_parser(&self, name: &str, history: bool) -> (vt100::Parser<Title>, usize) {
        let q = if history { "&scrollback=2000" } else { "" };
        let (st, v) = self
            .serve
            .call(
                Method::GET,
                &format!("/api/spawned/{name}/snapshot?format=ansi{q}"),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{name}: {v}");
        let (rows, cols) = (
            v["rows"].as_u64().unwrap() as u16,
            v["cols"].as_u64().unwrap() as u16,
        );
        let hist = v["scrollback"].as_u64().unwrap_or(0) as usize;
        let bytes = brokertui::b64::decode(v["screen"].as_str().unwrap()).unwrap();
        let mut p = vt100::Parser::new_with_callbacks(rows, cols, hist.max(1), Title::default());
        p.process(&bytes);
        (p, hist)
    }

    async fn ours(&self, name: &str, history: bool) -> Picture {
        let (mut p, hist) = self.our_parser(name, history).await;
        let (rows, cols) = p.screen().size();
        let mut lines = Vec::new();
        for h in 0..hist {
            p.screen_mut().set_scrollback(hist - h);
            lines.push(cells_of(p.screen(), 0, cols));
        }
        p.screen_mut().set_scrollback(0);
        let s = p.screen();
        lines.extend((0..rows).map(|r| cells_of(s, r, cols)));
        Picture {
            known: vec![usize::from(cols); lines.len()],
            lines,
            history: hist,
            cursor: s.cursor_position(),
            cursor_visible: !s.hide_cursor(),
            alternate: s.alternate_screen(),
            title: p.callbacks().0.clone(),
        }
    }

    async fn input(&self, name: &str, bytes: &[u8]) {
        let (st, v) = self
            .serve
            .call(
                Method::POST,
                &format!("/api/input/{name}"),
                Some(json!({"data_b64": brokertui::b64::encode(bytes)})),
            )
            .await;
        assert!(st.is_success(), "{name}: {v}");
    }

    /// Does `step` to both sides: to brokertui as the TUI would send it.
    async fn step(&self, case: &Case, step: &Step) -> Result<(), String> {
        let name = &case.name;
        match step {
            Step::Text(t) => self.input(name, t.as_bytes()).await,
            Step::Key(_, code, mods) => {
                let app_cursor = self
                    .our_parser(name, false)
                    .await
                    .0
                    .screen()
                    .application_cursor();
                let bytes =
                    brokertui::ui::keys::key_to_bytes(&KeyEvent::new(*code, *mods), app_cursor)
                        .expect("a key with bytes");
                self.input(name, &bytes).await;
            }
            Step::Click(col, row) | Step::WheelDown(col, row) => {
                let (p, _) = self.our_parser(name, false).await;
                let s = p.screen();
                let kinds = match step {
                    Step::WheelDown(..) => vec![MouseEventKind::ScrollDown],
                    _ => vec![
                        MouseEventKind::Down(MouseButton::Left),
                        MouseEventKind::Up(MouseButton::Left),
                    ],
                };
                for kind in kinds {
                    let ev = MouseEvent {
                        kind,
                        column: *col,
                        row: *row,
                        modifiers: KeyModifiers::NONE,
                    };
                    let bytes = brokertui::ui::keys::mouse_to_bytes(
                        &ev,
                        *col,
                        *row,
                        s.mouse_protocol_mode(),
                        s.mouse_protocol_encoding(),
                    )
                    .ok_or("the program did not ask for mouse reports")?;
                    self.input(name, &bytes).await;
                }
            }
            Step::Resize(rows, cols) => {
                let (st, v) = self
                    .serve
                    .call(
                        Method::POST,
                        &format!("/api/resize/{name}"),
                        Some(json!({"rows": rows, "cols": cols})),
                    )
                    .await;
                assert!(st.is_success(), "{name}: {v}");
            }
            Step::Wait(needle) => {
                let deadline = Instant::now() + Duration::from_secs(20);
                loop {
                    let ours = self.ours(name, false).await.text();
                    let theirs = self.tmux.capture(name, false)?.text();
                    if ours.contains(needle) && theirs.contains(needle) {
                        break;
                    }
                    if Instant::now() > deadline {
                        return Err(format!(
                            "{needle:?} never showed in both\n--- brokertui\n{ours}\n--- tmux\n{theirs}"
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            Step::Pause(ms) => tokio::time::sleep(Duration::from_millis(*ms)).await,
            Step::Check => self.check(case).await?,
        }
        self.tmux.step(name, step);
        Ok(())
    }

    /// Until both match, for up to 10 s; the last difference if they never do.
    async fn check(&self, case: &Case) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ours = self.ours(&case.name, case.history).await;
            let theirs = self.tmux.capture(&case.name, case.history)?;
            let diff = difference(&ours, &theirs);
            match diff {
                None => return Ok(()),
                Some(d) if Instant::now() > deadline => return Err(d),
                Some(_) => tokio::time::sleep(Duration::from_millis(150)).await,
            }
        }
    }

    /// Runs `case`, ending with a check; `Err` says how the screens differ.
    pub async fn run(&self, case: &Case, cwd: &Path) -> Result<(), String> {
        self.open(case, cwd).await;
        let mut result = Ok(());
        for step in case.steps.iter().chain([&Step::Check]) {
            if let Err(e) = self.step(case, step).await {
                result = Err(format!("at {step:?}: {e}"));
                break;
            }
        }
        self.close(case).await;
        result
    }
}

impl Picture {
    fn text(&self) -> String {
        self.lines
            .iter()
            .map(|l| {
                let s: String = l.iter().map(|c| c.text.as_str()).collect();
                s.trim_end().to_string()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// How `ours` differs from the reference, in a few lines a human can act on.
fn difference(ours: &Picture, theirs: &Picture) -> Option<String> {
    let mut out = String::new();
    if (ours.lines.len(), ours.history) != (theirs.lines.len(), theirs.history) {
        let _ = writeln!(
            out,
            "history rows: brokertui {} tmux {}; lines {} vs {}",
            ours.history,
            theirs.history,
            ours.lines.len(),
            theirs.lines.len()
        );
    }
    let first_screen_row = |p: &Picture| p.history;
    let mut cells = 0;
    for (i, (a, b)) in ours.lines.iter().zip(&theirs.lines).enumerate() {
        for (c, (x, y)) in a.iter().zip(b).enumerate() {
            let same = if c < theirs.known[i] {
                x == y
            } else {
                x.text.trim().is_empty() == y.text.trim().is_empty()
            };
            if !same {
                cells += 1;
                if cells <= 5 {
                    let row = i as isize - first_screen_row(theirs) as isize;
                    let _ = writeln!(out, "row {row} col {c}: brokertui {x:?} tmux {y:?}");
                }
            }
        }
    }
    if cells > 5 {
        let _ = writeln!(out, "… {cells} cells differ");
    }
    if ours.cursor != theirs.cursor {
        let _ = writeln!(
            out,
            "cursor: brokertui {:?} tmux {:?}",
            ours.cursor, theirs.cursor
        );
    }
    if ours.cursor_visible != theirs.cursor_visible {
        let _ = writeln!(
            out,
            "cursor visible: brokertui {} tmux {}",
            ours.cursor_visible, theirs.cursor_visible
        );
    }
    if ours.alternate != theirs.alternate {
        let _ = writeln!(
            out,
            "alternate screen: brokertui {} tmux {}",
            ours.alternate, theirs.alternate
        );
    }
    // tmux shows the host name until a program sets a title.
    if !ours.title.is_empty() && ours.title != theirs.title {
        let _ = writeln!(
            out,
            "title: brokertui {:?} tmux {:?}",
            ours.title, theirs.title
        );
    }
    if out.is_empty() {
        return None;
    }
    Some(format!(
        "{out}--- brokertui\n{}\n--- tmux\n{}",
        ours.text(),
        theirs.text()
    ))
}

/// Runs every case of `group`, `parallel` at a time; says how many match and fails the
/// test, naming the others, unless all do.
pub async fn all_match(sbs: &SideBySide, group: &str, cases: &[Case], cwd: &Path, parallel: usize) {
    let failures = run_all(sbs, cases, cwd, parallel).await;
    eprintln!(
        "fidelity: {group} {} of {} match tmux",
        cases.len() - failures.len(),
        cases.len()
    );
    let names: Vec<&String> = failures.iter().map(|f| &f.0).collect();
    assert!(failures.is_empty(), "differ from tmux: {names:?}");
}

/// Runs every case, `parallel` at a time, and returns the failures (name, how).
async fn run_all(
    sbs: &SideBySide,
    cases: &[Case],
    cwd: &Path,
    parallel: usize,
) -> Vec<(String, String)> {
    let mut failures = Vec::new();
    for chunk in cases.chunks(parallel.max(1)) {
        let results = futures_util::future::join_all(chunk.iter().map(|c| sbs.run(c, cwd))).await;
        for (case, r) in chunk.iter().zip(results) {
            match r {
                Ok(()) => eprintln!("fidelity: {} matches tmux", case.name),
                Err(e) => {
                    eprintln!("fidelity: {} DIFFERS\n{e}", case.name);
                    failures.push((case.name.clone(), e));
                }
            }
        }
    }
    failures
}
