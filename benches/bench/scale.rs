//! Scale: many workers at once — spawn time, memory per worker, idle CPU, and request
//! latency with every worker alive and some of them flooding output.

use std::time::{Duration, Instant};

use brokertui::broker::{BrokerConfig, BrokerHandle, SpawnSpec};
use brokertui::protocol::requests::RequestKind;
use brokertui::protocol::requests::snapshot::SnapshotFormat;

use crate::stats::{header, ms, row, summarize};

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return 0;
    };
    let f: Vec<&str> = rest.split(' ').collect();
    f.get(11).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}

/// Voluntary + involuntary context switches of each thread of a process, by thread id:
/// how often each woke up.
fn wakeups_by_thread(pid: u32) -> std::collections::HashMap<u32, u64> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Default::default();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .map(|tid| {
            let s = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status"))
                .unwrap_or_default();
            let n = s
                .lines()
                .filter(|l| l.contains("ctxt_switches"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
            (tid, n)
        })
        .collect()
}

/// Wake-ups of all of a process's threads since `before` (threads that ended meanwhile —
/// an idle runtime retires its blocking threads — count for what they did before).
fn wakeups_since(pid: u32, before: &std::collections::HashMap<u32, u64>) -> u64 {
    wakeups_by_thread(pid)
        .into_iter()
        .map(|(tid, n)| n.saturating_sub(before.get(&tid).copied().unwrap_or(0)))
        .sum()
}

pub async fn run(
    workers: usize,
    flooding: usize,
    idle_secs: u64,
    per_caller: usize,
    priority: Option<i32>,
) {
    let me = std::process::id();
    let rss_before = rss_kib(me).unwrap_or(0);
    let broker = BrokerHandle::start(BrokerConfig::new(crate::brokertui_exe()));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..workers {
        let broker = broker.clone();
        tasks.push(tokio::spawn(async move {
            broker
                .spawn(SpawnSpec {
                    name: format!("w{i}"),
                    cmd: vec!["sh".into()],
                    ..Default::default()
                })
                .await
                .expect("spawn")
        }));
    }
    let mut infos = Vec::new();
    for t in tasks {
        infos.push(t.await.expect("task"));
    }
    let spawn_time = t.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut worker_rss: Vec<u64> = infos.iter().filter_map(|i| rss_kib(i.worker_pid)).collect();
    worker_rss.sort();
    let broker_rss = rss_kib(me).unwrap_or(0).saturating_sub(rss_before);

    // Idle: nothing happens for idle_secs; how much CPU and how many wake-ups?
    let tick = 100.0; // USER_HZ
    let cpu0 = cpu_ticks(me);
    let wake0 = wakeups_by_thread(me);
    let wcpu0: Vec<u64> = infos.iter().map(|i| cpu_ticks(i.worker_pid)).collect();
    let wwake0: Vec<_> = infos
        .iter()
        .map(|i| wakeups_by_thread(i.worker_pid))
        .collect();
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    let secs = idle_secs as f64;
    let broker_cpu = (cpu_ticks(me) - cpu0) as f64 / tick / secs * 100.0;
    let broker_wake = wakeups_since(me, &wake0) as f64 / secs;
    let workers_cpu = infos
        .iter()
        .zip(&wcpu0)
        .map(|(i, b)| cpu_ticks(i.worker_pid).saturating_sub(*b))
        .sum::<u64>() as f64
        / tick
        / secs
        * 100.0;
    let workers_wake = infos
        .iter()
        .zip(&wwake0)
        .map(|(i, b)| wakeups_since(i.worker_pid, b))
        .sum::<u64>() as f64
        / secs
        / workers as f64;

    println!("\n### Scale: {workers} workers running sh\n");
    println!("| measure | value |\n|---|---|");
    println!(
        "| spawn {workers} workers (until all ready) | {} ({} per worker) |",
        ms(spawn_time),
        ms(spawn_time / workers as u32)
    );
    println!(
        "| worker process RSS, median / max | {} KiB / {} KiB |",
        worker_rss[worker_rss.len() / 2],
        worker_rss.last().unwrap_or(&0)
    );
    println!(
        "| broker (bench process) RSS growth for {workers} workers | {} KiB ({} KiB per worker) |",
        broker_rss,
        broker_rss / workers as u64
    );
    println!(
        "| idle broker CPU over {idle_secs} s | {broker_cpu:.2}% ({broker_wake:.1} wake-ups/s, all threads) |"
    );
    println!(
        "| idle CPU of all {workers} workers together | {workers_cpu:.2}% ({workers_wake:.2} wake-ups/s per worker) |"
    );

    header(&format!(
        "get_mode with {workers} workers alive (64 concurrent callers)"
    ));
    let quiet =
        crate::requests::in_process(&broker, RequestKind::GetMode, workers, 64, per_caller).await;
    row("all idle", &summarize(quiet));
    // Each flood is watched and shown as the TUI shows it: one loop (the TUI has one) takes
    // every pane's chunks as they come and draws each pane at most once per frame; the floods
    // run at the pace credit flows back from it.
    let mut streams = tokio_stream::StreamMap::new();
    let mut panes = std::collections::HashMap::new();
    for i in 0..flooding {
        let name = format!("w{i}");
        let sub = broker.subscribe_output(&name).await.expect("subscribe");
        streams.insert(name.clone(), Box::pin(sub.into_stream()));
        panes.insert(
            name.clone(),
            crate::drawn::Drawn::new(broker.clone(), &name, 50, 200),
        );
        broker
            .input(&name, b"yes flood-flood-flood-flood\r".to_vec())
            .await
            .expect("flood");
    }
    // On a thread of its own, as the TUI's loop would be beside an in-process broker.
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let tui_loop = async move {
        use futures_util::StreamExt;
        for pane in panes.values_mut() {
            pane.resync().await;
        }
        while let Some((name, item)) = streams.next().await {
            let pane = panes.get_mut(&name).expect("pane");
            match item {
                brokertui::broker::Received::Item(chunk) => pane.take(chunk).await,
                _ => pane.resync().await,
            }
        }
    };
    let tui = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            tokio::select! {
                _ = tui_loop => {}
                _ = stop_rx => {}
            }
        });
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    // PTY bytes the floods have produced so far (a snapshot's offset), to show they really
    // flood while we measure.
    let flooded = |broker: BrokerHandle| async move {
        let mut total = 0u64;
        for i in 0..flooding {
            let snap = broker
                .snapshot(&format!("w{i}"), SnapshotFormat::Plain, None)
                .await
                .expect("snapshot");
            total += snap.offset;
        }
        total
    };
    let measure = |label: String| {
        let broker = broker.clone();
        async move {
            let (before, started) = (flooded(broker.clone()).await, Instant::now());
            // Query only the quiet ones: name them w{flooding}..w{workers}.
            let quiet = broker.clone();
            let lat = crate::requests::measure(64, per_caller, move |c, i| {
                let broker = quiet.clone();
                async move {
                    let w = flooding + (c * per_caller + i) % (workers - flooding);
                    broker
                        .get_mode(&format!("w{w}"), None)
                        .await
                        .expect("get_mode");
                }
            })
            .await;
            let rate = (flooded(broker.clone()).await - before) as f64
                / (1 << 20) as f64
                / started.elapsed().as_secs_f64();
            let lat = summarize(lat);
            row(
                &format!(
                    "{flooding} flooding (`yes`), querying the other {}{label}",
                    workers - flooding
                ),
                &lat,
            );
            // The same load shape with nothing of ours in the request path: `cat` processes
            // echoing lines over pipes, while the same floods run.
            let floor =
                crate::requests::pipe_floor(&["cat".to_string()], "", 16, 64, per_caller).await;
            row(
                &format!("floor: `cat` echo during the same floods{label}"),
                &summarize(floor),
            );
            (lat.p99, rate)
        }
    };
    let (p99, rate) = measure(String::new()).await;
    let mut raised = None;
    if let Some(nice) = priority {
        match brokertui::sched::raise_front(nice) {
            Ok(p) => {
                let again = measure(format!(", this process at nice {nice}")).await;
                raised = Some((nice, again, p));
            }
            Err(e) => println!("| (not raised: {e}) | | | | |"),
        }
    }
    println!(
        "\nthe {flooding} floods together meanwhile: {rate:.0} MiB/s of output, each shown as the TUI shows it"
    );
    if let Some((nice, (p99_raised, rate_raised), _held)) = &raised {
        println!(
            "at nice {nice}: {rate_raised:.0} MiB/s of output; get_mode p99 normal / raised = {:.1}",
            p99.as_secs_f64() / p99_raised.as_secs_f64()
        );
    }
    drop(raised);
    let _ = stop_tx.send(());
    let _ = tui.join();
    broker.shutdown().await;
}
