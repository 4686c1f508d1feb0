//! Clients that wait: `brokertui send --wait` (until the message is submitted), `ctl wait`
//! (until a worker's agent reaches a state), and `brokertui hook` (what an agent's hook runs).
//!
//! Both waits poll the API every [`POLL`]: a handful of small requests a second, and no
//! event stream to resume after a broker restart.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use super::Client;

const POLL: Duration = Duration::from_millis(100);
/// Exit codes of the waits (README): reached, timed out, unconfirmed.
pub const EXIT_TIMED_OUT: i32 = 8;
pub const EXIT_UNCONFIRMED: i32 = 9;

/// Waits until every recipient of message `id` has it `submitted` (0), any has it
/// `unconfirmed` (9), or `timeout` passes (8). Prints the final records as JSON.
pub async fn message_settled(
    client: &Client,
    id: &str,
    recipients: &[String],
    timeout: Duration,
) -> i32 {
    let until = Instant::now() + timeout;
    loop {
        let records: Vec<Value> = match client.call(Method::GET, "/api/messages", None).await {
            Ok(v) => v["messages"]
                .as_array()
                .map(|a| a.iter().filter(|m| m["id"] == id).cloned().collect())
                .unwrap_or_default(),
            Err(e) => {
                eprintln!("brokertui send: {e}");
                return e.exit_code();
            }
        };
        let state_of = |to: &str| {
            records
                .iter()
                .find(|m| m["to"] == to)
                .and_then(|m| m["state"].as_str())
                .unwrap_or("queued")
                .to_string()
        };
        let states: Vec<String> = recipients.iter().map(|r| state_of(r)).collect();
        if states.iter().any(|s| s == "unconfirmed") {
            println!("{}", json!({"id": id, "messages": records}));
            eprintln!("brokertui send: typed, but not confirmed as submitted");
            return EXIT_UNCONFIRMED;
        }
        if states.iter().all(|s| s == "submitted") {
            println!("{}", json!({"id": id, "messages": records}));
            return 0;
        }
        if Instant::now() >= until {
            println!("{}", json!({"id": id, "messages": records}));
            eprintln!(
                "brokertui send: not submitted within {} ms (now: {})",
                timeout.as_millis(),
                states.join(", ")
            );
            return EXIT_TIMED_OUT;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `ctl wait NAME --state S`: 0 once the worker's agent is in `state`, 8 at the timeout.
pub async fn agent_state(client: &Client, name: &str, state: &str, timeout: Duration) -> i32 {
    let until = Instant::now() + timeout;
    loop {
        match client
            .call(Method::GET, &format!("/api/spawned/{name}/agent"), None)
            .await
        {
            Ok(v) if v["state"] == state => {
                println!("{v}");
                return 0;
            }
            Ok(v) if Instant::now() >= until => {
                println!("{v}");
                eprintln!(
                    "brokertui ctl wait: {name} did not become {state} within {} ms",
                    timeout.as_millis()
                );
                return EXIT_TIMED_OUT;
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("brokertui ctl wait: {e}");
                return e.exit_code();
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `brokertui hook EVENT`: posts the hook's stdin (JSON) to the broker with the worker's
/// token. Always exits 0 and prints nothing: a hook's output would reach the agent, and a
/// broker that is away must never stall it.
pub async fn hook(event: &str) -> i32 {
    let mut text = String::new();
    let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut text);
    let data: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let Ok(client) = Client::discover(None, None, None) else {
        return 0;
    };
    let post = client.call(
        Method::POST,
        "/api/hook",
        Some(json!({"event": event, "data": data})),
    );
    if let Ok(Err(e)) = tokio::time::timeout(Duration::from_secs(2), post).await {
        tracing::debug!("hook {event} not delivered: {e}");
    }
    0
}
