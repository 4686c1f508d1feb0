//! Clients of a running broker's HTTP API: `brokertui ctl` (scripts) and `brokertui send`
//! (agents inside workers).
//!
//! A client finds its broker from, in order: `--url`/`--token`, the `BROKERTUI_URL` /
//! `BROKERTUI_TOKEN` environment (set inside every worker), then `connection.json` in the
//! state dir (written by `--serve`).

pub mod ctl;
pub mod wait;

use std::path::{Path, PathBuf};

use color_eyre::eyre::WrapErr;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What `--serve` writes to `<state dir>/connection.json` (mode 0600).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Connection {
    pub url: String,
    pub token: String,
    pub pid: u32,
}

/// `--state-dir`, else `$XDG_STATE_HOME/brokertui`, else `~/.local/state/brokertui`.
pub fn state_dir(explicit: Option<&Path>) -> PathBuf {
    if let Some(dir) = explicit {
        return dir.to_path_buf();
    }
    if let Some(xdg) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("brokertui");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".local/state/brokertui")
}

pub fn connection_path(state_dir: &Path) -> PathBuf {
    state_dir.join("connection.json")
}

/// Writes `connection.json` readable by its owner only.
pub fn write_connection(state_dir: &Path, conn: &Connection) -> std::io::Result<PathBuf> {
    let path = connection_path(state_dir);
    let text = serde_json::to_string_pretty(conn).expect("serializes");
    crate::fsutil::write_private(&path, text.as_bytes())?;
    Ok(path)
}

/// An HTTP client bound to one broker.
pub struct Client {
    pub url: String,
    token: String,
    http: reqwest::Client,
}

/// A failed API call: the HTTP status (0 when the broker could not be reached) and the
/// error body's code and message.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct CallError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl Client {
    pub fn new(url: &str, token: &str) -> Self {
        Client {
            url: url.trim_end_matches('/').to_string(),
            token: token.to_string(),
            http: reqwest::Client::new(),
        }
    }

    /// Finds the broker as described in the module docs.
    pub fn discover(
        url: Option<&str>,
        token: Option<&str>,
        state: Option<&Path>,
    ) -> color_eyre::Result<Self> {
        let env_url = std::env::var("BROKERTUI_URL").ok();
        let env_token = std::env::var("BROKERTUI_TOKEN").ok();
        if let (Some(u), Some(t)) = (url.or(env_url.as_deref()), token.or(env_token.as_deref())) {
            return Ok(Client::new(u, t));
        }
        let path = connection_path(&state_dir(state));
        let text = std::fs::read_to_string(&path).wrap_err_with(|| {
            format!(
                "no broker found: pass --url and --token, set BROKERTUI_URL and BROKERTUI_TOKEN, or start `brokertui --serve` (which writes {})",
                path.display()
            )
        })?;
        let conn: Connection = serde_json::from_str(&text)
            .wrap_err_with(|| format!("{} is not a valid connection file", path.display()))?;
        // A broker killed outright leaves its file behind: do not trust it.
        let gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(conn.pid as i32), None)
            == Err(nix::errno::Errno::ESRCH);
        if gone && url.is_none() {
            color_eyre::eyre::bail!(
                "the broker that wrote {} (pid {}) is no longer running; start `brokertui --serve` again",
                path.display(),
                conn.pid
            );
        }
        Ok(Client::new(
            url.unwrap_or(&conn.url),
            token.unwrap_or(&conn.token),
        ))
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CallError> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.map_err(|e| CallError {
            status: 0,
            code: "unreachable".into(),
            message: format!("cannot reach the broker at {}: {e}", self.url),
        })?;
        let status = resp.status().as_u16();
        let value: Value = resp.json().await.unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            Ok(value)
        } else {
            Err(CallError {
                status,
                code: value["error"]["code"]
                    .as_str()
                    .unwrap_or("http_error")
                    .to_string(),
                message: value["error"]["message"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("HTTP {status}")),
            })
        }
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("{}{path}", self.url.replacen("http", "ws", 1))
    }

    pub fn token(&self) -> &str {
        &self.token
    }
}

impl CallError {
    /// Exit codes scripts can branch on (documented in the README).
    pub fn exit_code(&self) -> i32 {
        match self.status {
            0 => 10,
            400 | 413 => 2,
            401 | 403 => 3,
            404 => 4,
            409 => 5,
            422 => 9,
            429 => 12,
            502 => 6,
            503 => 7,
            504 => 8,
            507 => 11,
            _ => 1,
        }
    }
}

/// `brokertui send TO BODY`: what an agent inside a worker runs. With `wait`, blocks until
/// the message is submitted (see [`wait::message_settled`]).
pub async fn send(
    to: &str,
    body: &str,
    when: Option<&str>,
    wait: Option<std::time::Duration>,
) -> color_eyre::Result<i32> {
    let client = Client::discover(None, None, None)?;
    let body = if body == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
        text
    } else {
        body.to_string()
    };
    if std::env::var("BROKERTUI_NAME").is_err() {
        eprintln!("note: BROKERTUI_NAME is not set; sending with the token's identity");
    }
    match client
        .call(
            reqwest::Method::POST,
            "/api/send",
            Some(serde_json::json!({"to": to, "body": body, "when": when})),
        )
        .await
    {
        Ok(v) => match wait {
            Some(timeout) => {
                let id = v["id"].as_str().unwrap_or_default().to_string();
                let recipients: Vec<String> = v["recipients"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|r| r.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(wait::message_settled(&client, &id, &recipients, timeout).await)
            }
            None => {
                println!("{v}");
                Ok(0)
            }
        },
        Err(e) => {
            eprintln!("brokertui send: {e}");
            Ok(e.exit_code())
        }
    }
}
