//! Request latency through the correlated request helper, in-process and over HTTP, and
//! timeout precision.

use std::sync::Arc;
use std::time::{Duration, Instant};

use brokertui::api::{ApiState, Server, Tokens};
use brokertui::broker::{BrokerConfig, BrokerHandle, SpawnSpec};
use brokertui::protocol::requests::RequestKind;
use serde_json::json;

use crate::stats::{header, ms, row, summarize};

pub async fn broker_with(workers: usize, cmd: &[&str]) -> BrokerHandle {
    let broker = BrokerHandle::start(BrokerConfig::new(crate::brokertui_exe()));
    for i in 0..workers {
        broker
            .spawn(SpawnSpec {
                name: format!("w{i}"),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            })
            .await
            .expect("spawn");
    }
    broker
}

fn payload(kind: RequestKind) -> serde_json::Value {
    match kind {
        RequestKind::Snapshot => json!({"format": "plain"}),
        _ => json!({}),
    }
}

/// `callers` tasks, each timing `per_caller` sequential calls of `call(caller, i)`; all the
/// latencies together.
pub async fn measure<F, Fut>(callers: usize, per_caller: usize, call: F) -> Vec<Duration>
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let mut tasks = Vec::new();
    for c in 0..callers {
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per_caller);
            for i in 0..per_caller {
                let t = Instant::now();
                call(c, i).await;
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    all
}

/// The floor under any request to a worker process, measured the same way: `workers` `cat`
/// processes, callers round-robin over them, each call a JSON line written to a child's
/// stdin and answered when that child echoes a line back (matched in order). Same process
/// count, pipes and wake-ups as a request through the broker; no broker, no parsing.
///
/// With `cmd` = `brokertui worker … -- sh` (and only `response` lines counted) the same
/// measures the worker processes alone, without the broker in front of them.
pub async fn pipe_floor(
    cmd: &[String],
    reply_marker: &'static str,
    workers: usize,
    callers: usize,
    per_caller: usize,
) -> Vec<Duration> {
    use std::collections::VecDeque;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    use tokio::sync::{Mutex, oneshot};

    type Waiting = Arc<std::sync::Mutex<VecDeque<oneshot::Sender<()>>>>;
    let mut children = Vec::new();
    let mut ends = Vec::new();
    for _ in 0..workers {
        let mut child = tokio::process::Command::new(&cmd[0])
            .args(&cmd[1..])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn cat");
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let waiting: Waiting = Arc::default();
        let w = waiting.clone();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if !line.contains(reply_marker) {
                    continue;
                }
                if let Some(tx) = w.lock().expect("waiting").pop_front() {
                    let _ = tx.send(());
                }
            }
        });
        ends.push(Arc::new((Mutex::new(stdin), waiting)));
        children.push(child);
    }
    let ends = Arc::new(ends);
    let lat = measure(callers, per_caller, move |c, i| {
        let end = ends[(c + i) % workers].clone();
        async move {
            let (tx, rx) = oneshot::channel();
            {
                let mut stdin = end.0.lock().await;
                end.1.lock().expect("waiting").push_back(tx);
                stdin
                    .write_all(b"{\"v\":1,\"type\":\"get_mode\",\"request_id\":\"r-0000000000\",\"payload\":{}}\n")
                    .await
                    .expect("write");
            }
            rx.await.expect("echo");
        }
    })
    .await;
    drop(children);
    lat
}

/// Requests of `kind` through `request_worker`, to the workers round-robin.
pub async fn in_process(
    broker: &BrokerHandle,
    kind: RequestKind,
    workers: usize,
    callers: usize,
    per_caller: usize,
) -> Vec<Duration> {
    let broker = broker.clone();
    measure(callers, per_caller, move |c, i| {
        let broker = broker.clone();
        async move {
            let name = format!("w{}", (c + i) % workers);
            broker
                .request_worker(&name, kind, payload(kind), None)
                .await
                .expect("request");
        }
    })
    .await
}

/// The route path for worker number N.
type PathOf = fn(usize) -> String;

async fn over_http(
    url: &str,
    token: &str,
    path_of: PathOf,
    workers: usize,
    callers: usize,
    per_caller: usize,
) -> Vec<Duration> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(callers)
        .build()
        .expect("client");
    let (url, token) = (url.to_string(), token.to_string());
    measure(callers, per_caller, move |c, i| {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        async move {
            let resp = client
                .get(format!("{url}{}", path_of((c + i) % workers)))
                .bearer_auth(&token)
                .send()
                .await
                .expect("http");
            assert!(resp.status().is_success(), "{}", resp.status());
            let _ = resp.bytes().await.expect("body");
        }
    })
    .await
}

pub async fn run(workers: usize, per_caller: usize) {
    let broker = broker_with(workers, &["sh"]).await;
    header(&format!(
        "Request round trip through request_worker, {workers} workers (in-process)"
    ));
    let cat = vec!["cat".to_string()];
    let exe = crate::brokertui_exe().display().to_string();
    let direct: Vec<String> = [exe.as_str(), "worker", "--name", "w", "--", "sh"]
        .map(String::from)
        .to_vec();
    for (label, cmd, marker) in [
        ("floor: `cat` echo", &cat, ""),
        (
            "worker processes alone, get_mode",
            &direct,
            "\"type\":\"response\"",
        ),
    ] {
        for callers in [1, 64] {
            pipe_floor(cmd, marker, workers, callers, 10).await;
            let lat = pipe_floor(cmd, marker, workers, callers, per_caller).await;
            row(&format!("{label} × {callers} concurrent"), &summarize(lat));
        }
    }
    for kind in [
        RequestKind::GetMode,
        RequestKind::Pending,
        RequestKind::Flush,
        RequestKind::Snapshot,
    ] {
        for callers in [1, 64] {
            // Warm up once (connections, allocations), then measure.
            in_process(&broker, kind, workers, callers, 10).await;
            let lat = in_process(&broker, kind, workers, callers, per_caller).await;
            row(&format!("{kind} × {callers} concurrent"), &summarize(lat));
        }
    }

    let tokens = Tokens::new();
    let server = Server::start(
        "127.0.0.1:0".parse().expect("addr"),
        ApiState {
            broker: broker.clone(),
            tokens: tokens.clone(),
        },
    )
    .await
    .expect("server");
    let url = server.url();
    header(&format!(
        "HTTP round trip (axum + reqwest on loopback), {workers} workers"
    ));
    let routes: [(&str, PathOf); 4] = [
        // The floor: the same server and client, a route that touches nothing else.
        ("floor: GET /health", |_| "/health".to_string()),
        ("GET mode", |w| format!("/api/spawned/w{w}/mode")),
        ("GET pending", |w| format!("/api/spawned/w{w}/pending")),
        ("GET snapshot", |w| {
            format!("/api/spawned/w{w}/snapshot?format=plain")
        }),
    ];
    for (label, path_of) in routes {
        for callers in [1, 64] {
            over_http(&url, tokens.admin(), path_of, workers, callers, 10).await;
            let lat = over_http(&url, tokens.admin(), path_of, workers, callers, per_caller).await;
            row(&format!("{label} × {callers} concurrent"), &summarize(lat));
        }
    }
    server.stop().await;
    broker.shutdown().await;
}

/// A SIGSTOPped worker, `n` requests with a 200 ms deadline (10 at a time): how late does
/// `Timeout` arrive?
pub async fn timeouts(n: usize) {
    let broker = broker_with(1, &["sh"]).await;
    let info = broker.info("w0").await.expect("info");
    let pid = nix::unistd::Pid::from_raw(info.worker_pid as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).expect("stop");
    let deadline = Duration::from_millis(200);
    let broker = Arc::new(broker);
    let mut late = Vec::new();
    for _ in 0..n.div_ceil(10) {
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let broker = broker.clone();
            tasks.push(tokio::spawn(async move {
                let t = Instant::now();
                let err = broker
                    .get_mode("w0", Some(deadline))
                    .await
                    .expect_err("must time out");
                assert_eq!(err.code(), "worker_timeout");
                t.elapsed()
            }));
        }
        for t in tasks {
            late.push(t.await.expect("task").saturating_sub(deadline));
        }
    }
    let s = summarize(late);
    header("Timeout precision: lateness past a 200 ms deadline (SIGSTOPped worker)");
    row("Timeout lateness", &s);
    println!("\nlateness p99 {} (target ≤ 10 ms)", ms(s.p99));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).expect("cont");
    broker.shutdown().await;
}
