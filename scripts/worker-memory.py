#!/usr/bin/env python3
"""A worker's memory, idle and with a full history (BENCHMARKS.md).

Starts `brokertui --serve`, spawns idle `sh` workers and workers that print enough 200-column
lines to fill their 2000-row history (50x200 by default), and reads each worker process's PSS and RSS
from /proc/<pid>/smaps_rollup (PSS counts the shared binary's pages once per process that maps
them, divided among them: what one more worker costs).

    cargo build --release && scripts/worker-memory.py [--idle 10] [--busy 10] [--rows 50]
        [--cols 200] [--exe PATH]
"""
import argparse, importlib.util, os, statistics, subprocess, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("su", os.path.join(HERE, "serve-unwatched.py"))
su = importlib.util.module_from_spec(spec)
spec.loader.exec_module(su)


def rollup(pid):
    kib = {}
    for line in open(f"/proc/{pid}/smaps_rollup"):
        parts = line.split()
        if parts[0] in ("Pss:", "Rss:"):
            kib[parts[0][:-1]] = int(parts[1])
    return kib


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle", type=int, default=10)
    ap.add_argument("--busy", type=int, default=10)
    ap.add_argument("--rows", type=int, default=50)
    ap.add_argument("--cols", type=int, default=200)
    ap.add_argument("--exe", default=su.EXE)
    a = ap.parse_args()
    state = tempfile.mkdtemp(prefix="wm-state-")
    broker, conn = su.start_broker(a.exe, state)
    try:
        fill = "i=0; while [ $i -lt 3000 ]; do printf '%0200d\\n' $i; i=$((i+1)); done; echo FULL; exec sleep 600"
        names = {}
        for i in range(a.idle):
            names[f"idle{i}"] = "idle"
            su.call(conn, "POST", "/api/spawn",
                    {"name": f"idle{i}", "cmd": ["sh"], "rows": a.rows, "cols": a.cols})
        for i in range(a.busy):
            names[f"busy{i}"] = "full history"
            su.call(conn, "POST", "/api/spawn",
                    {"name": f"busy{i}", "cmd": ["sh", "-c", fill], "rows": a.rows,
                     "cols": a.cols})
        for name, kind in names.items():
            if kind == "full history":
                while "FULL" not in "\n".join(su.call(
                        conn, "GET", f"/api/spawned/{name}/snapshot")["screen"]):
                    time.sleep(0.1)
        time.sleep(1)
        workers = su.call(conn, "GET", "/api/spawned")["workers"]
        got = {"idle": [], "full history": []}
        for w in workers:
            got[names[w["name"]]].append(rollup(w["worker_pid"]))
        print("| worker | n | PSS KiB median (range) | RSS KiB median (range) |")
        print("|---|---|---|---|")
        for kind, rows in got.items():
            if not rows:
                continue
            pss = [r["Pss"] for r in rows]
            rss = [r["Rss"] for r in rows]
            print(f"| {kind} | {len(rows)} | {statistics.median(pss):.0f} ({min(pss)}–{max(pss)}) "
                  f"| {statistics.median(rss):.0f} ({min(rss)}–{max(rss)}) |")
    finally:
        broker.terminate()
        broker.wait()
        subprocess.run(["rm", "-rf", state], check=False)


if __name__ == "__main__":
    main()
