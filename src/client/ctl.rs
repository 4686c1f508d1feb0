//! `brokertui ctl`: the broker's API from the command line. JSON on stdout, errors on
//! stderr, and an exit code per error class (see [`super::CallError::exit_code`]).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

use super::Client;

#[derive(Args, Debug)]
pub struct CtlArgs {
    /// Broker URL (default: $BROKERTUI_URL, then connection.json).
    #[arg(long)]
    pub url: Option<String>,
    /// Bearer token (default: $BROKERTUI_TOKEN, then connection.json).
    #[arg(long)]
    pub token: Option<String>,
    /// Where connection.json lives.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Per-request deadline for snapshot/mode/pending/flush, in ms (1..=60000).
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    #[command(subcommand)]
    pub command: CtlCommand,
}

#[derive(Subcommand, Debug)]
pub enum CtlCommand {
    /// Start a worker: `ctl spawn NAME -- CMD ARGS...`
    Spawn {
        name: String,
        #[arg(long)]
        cwd: Option<PathBuf>,
        #[arg(long)]
        rows: Option<u16>,
        #[arg(long)]
        cols: Option<u16>,
        #[arg(long)]
        mode: Option<String>,
        /// Run it in its own git worktree (on `<prefix>/NAME`, or on --branch).
        #[arg(long)]
        worktree: bool,
        /// The worktree's branch (implies --worktree).
        #[arg(long)]
        branch: Option<String>,
        /// Release it after this long idle with nobody attached, in seconds (0: never).
        #[arg(long)]
        idle_timeout_s: Option<u64>,
        #[arg(last = true, required = true)]
        cmd: Vec<String>,
    },
    /// List workers.
    List,
    /// Type TEXT into a worker (escapes like \r are not interpreted; use $'...' in bash).
    Input {
        name: String,
        text: String,
    },
    Resize {
        name: String,
        rows: u16,
        cols: u16,
    },
    /// A worker's screen.
    Snapshot {
        name: String,
        #[arg(long, default_value = "plain")]
        format: String,
    },
    /// Show, or set, a worker's session mode (relay|human).
    Mode {
        name: String,
        mode: Option<crate::protocol::SessionMode>,
    },
    /// Messages waiting in a worker's queue.
    Pending {
        name: String,
    },
    /// Inject every pending message.
    Flush {
        name: String,
    },
    /// Relay BODY to a worker (or `*`); `-` reads stdin.
    Send {
        to: String,
        body: String,
        #[arg(long)]
        from: Option<String>,
    },
    /// End a worker's session and forget it (its worktree is kept unless --remove-worktree).
    Release {
        name: String,
        /// Also remove its worktree and branch (refused while they hold unsaved work).
        #[arg(long)]
        remove_worktree: bool,
        /// With --remove-worktree: remove them even with uncommitted changes or unmerged commits.
        #[arg(long, requires = "remove_worktree")]
        force: bool,
    },
    /// Start an exited worker again as it was (same name, command, directory, environment).
    Restart {
        name: String,
    },
    /// What a worker changed (its worktree against its base): a unified diff, or --json.
    Diff {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Stream events as NDJSON.
    Events {
        #[arg(long)]
        since: Option<u64>,
        /// Also stream output of these workers (repeatable).
        #[arg(long)]
        output: Vec<String>,
    },
    /// Broker health.
    Health,
    /// Wait until a worker's agent is in STATE: exit 0, or 8 after --timeout-ms.
    Wait {
        name: String,
        #[arg(long, value_parser = ["starting", "working", "idle", "blocked", "exited", "unknown"])]
        state: String,
        #[arg(long = "timeout-ms", default_value_t = 30_000)]
        wait_timeout_ms: u64,
    },
    /// A full-terminal client of one worker (restores the terminal on exit; the worker keeps
    /// running). In drive/relay, Ctrl-b d goes back to view; q in view quits.
    Attach {
        name: String,
        #[arg(long, default_value = "drive", value_parser = ["view", "drive", "relay"])]
        mode: String,
    },
}

/// What a `ctl` command leaves for `main`: an exit code, or a TUI to run (`ctl attach`).
pub enum Outcome {
    Exit(i32),
    Attach {
        client: Client,
        name: String,
        /// `view`, `drive` or `relay`.
        mode: String,
        state_dir: std::path::PathBuf,
    },
}

impl From<i32> for Outcome {
    fn from(code: i32) -> Self {
        Outcome::Exit(code)
    }
}

pub async fn run(args: CtlArgs) -> color_eyre::Result<Outcome> {
    let client = Client::discover(
        args.url.as_deref(),
        args.token.as_deref(),
        args.state_dir.as_deref(),
    )?;
    let t = args
        .timeout_ms
        .map(|ms| format!("timeout_ms={ms}"))
        .unwrap_or_default();
    let q = |extra: &str| -> String {
        let parts: Vec<&str> = [extra, t.as_str()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    };
    let (method, path, body): (Method, String, Option<Value>) = match args.command {
        CtlCommand::Spawn {
            name,
            cwd,
            rows,
            cols,
            mode,
            worktree,
            branch,
            idle_timeout_s,
            cmd,
        } => {
            let mut spec = json!({"name": name, "cmd": cmd});
            if let Some(b) = branch {
                spec["worktree"] = json!(b);
            } else if worktree {
                spec["worktree"] = json!(true);
            }
            if let Some(s) = idle_timeout_s {
                spec["idle_timeout_ms"] = json!(s.saturating_mul(1000));
            }
            if let Some(cwd) = cwd {
                spec["cwd"] = json!(cwd);
            }
            if let Some(r) = rows {
                spec["rows"] = json!(r);
            }
            if let Some(c) = cols {
                spec["cols"] = json!(c);
            }
            if let Some(m) = mode {
                spec["mode"] = json!(m);
            }
            (Method::POST, "/api/spawn".into(), Some(spec))
        }
        CtlCommand::List => (Method::GET, "/api/spawned".into(), None),
        CtlCommand::Input { name, text } => (
            Method::POST,
            format!("/api/input/{name}"),
            Some(json!({ "data": text })),
        ),
        CtlCommand::Resize { name, rows, cols } => (
            Method::POST,
            format!("/api/resize/{name}"),
            Some(json!({"rows": rows, "cols": cols})),
        ),
        CtlCommand::Snapshot { name, format } => (
            Method::GET,
            format!(
                "/api/spawned/{name}/snapshot{}",
                q(&format!("format={format}"))
            ),
            None,
        ),
        CtlCommand::Mode { name, mode: None } => (
            Method::GET,
            format!("/api/spawned/{name}/mode{}", q("")),
            None,
        ),
        CtlCommand::Mode {
            name,
            mode: Some(m),
        } => (
            Method::PUT,
            format!("/api/spawned/{name}/mode{}", q("")),
            Some(json!({ "mode": m })),
        ),
        CtlCommand::Pending { name } => (
            Method::GET,
            format!("/api/spawned/{name}/pending{}", q("")),
            None,
        ),
        CtlCommand::Flush { name } => (
            Method::POST,
            format!("/api/spawned/{name}/flush{}", q("")),
            None,
        ),
        CtlCommand::Send { to, body, from } => {
            let body = if body == "-" {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
                text
            } else {
                body
            };
            let mut msg = json!({"to": to, "body": body});
            if let Some(from) = from {
                msg["from"] = json!(from);
            }
            (Method::POST, "/api/send".into(), Some(msg))
        }
        CtlCommand::Release {
            name,
            remove_worktree,
            force,
        } => {
            let query = match (remove_worktree, force) {
                (false, _) => "",
                (true, false) => "?worktree=remove",
                (true, true) => "?worktree=remove&force=true",
            };
            (Method::DELETE, format!("/api/spawned/{name}{query}"), None)
        }
        CtlCommand::Restart { name } => {
            (Method::POST, format!("/api/spawned/{name}/restart"), None)
        }
        CtlCommand::Diff { name, json } => {
            let path = format!("/api/spawned/{name}/diff");
            return Ok(match client.call(Method::GET, &path, None).await {
                Ok(v) if json => {
                    println!("{}", serde_json::to_string_pretty(&v)?);
                    Outcome::Exit(0)
                }
                Ok(v) => {
                    print!("{}", v["text"].as_str().unwrap_or_default());
                    Outcome::Exit(0)
                }
                Err(e) => {
                    eprintln!("brokertui ctl: {e}");
                    Outcome::Exit(e.exit_code())
                }
            });
        }
        CtlCommand::Health => (Method::GET, "/health".into(), None),
        CtlCommand::Wait {
            name,
            state,
            wait_timeout_ms,
        } => {
            let timeout = std::time::Duration::from_millis(wait_timeout_ms);
            return Ok(super::wait::agent_state(&client, &name, &state, timeout)
                .await
                .into());
        }
        CtlCommand::Events { since, output } => {
            return events(&client, since, &output).await.map(Outcome::from);
        }
        CtlCommand::Attach { name, mode } => {
            return Ok(Outcome::Attach {
                client,
                name,
                mode,
                state_dir: super::state_dir(args.state_dir.as_deref()),
            });
        }
    };
    match client.call(method, &path, body).await {
        Ok(v) => {
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(Outcome::Exit(0))
        }
        Err(e) => {
            eprintln!("brokertui ctl: {e}");
            Ok(Outcome::Exit(e.exit_code()))
        }
    }
}

async fn events(client: &Client, since: Option<u64>, output: &[String]) -> color_eyre::Result<i32> {
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue};
    let mut params = Vec::new();
    if let Some(s) = since {
        params.push(format!("since={s}"));
    }
    if !output.is_empty() {
        params.push(format!("output={}", output.join(",")));
    }
    let url = client.ws_url(&format!("/api/events?{}", params.join("&")));
    let mut req = url.into_client_request()?;
    req.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {}", client.token()))?,
    );
    let (mut ws, _) = match tokio_tungstenite::connect_async(req).await {
        Ok(ok) => ok,
        Err(e) => {
            eprintln!("brokertui ctl: cannot open the event stream: {e}");
            return Ok(1);
        }
    };
    while let Some(msg) = ws.next().await {
        match msg {
            Ok(tokio_tungstenite::tungstenite::Message::Text(text)) => println!("{text}"),
            Ok(tokio_tungstenite::tungstenite::Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    Ok(0)
}
