#!/usr/bin/env python3
"""Key-to-screen latency in the real TUI while another pane floods (BENCHMARKS.md).

Runs `brokertui -w flood=<cmd> -w sh=sh` in a detached tmux session (200x50), drives the
`sh` pane, types a fresh marker character per sample and polls `tmux capture-pane` every
5 ms until it shows. The same with `flood=sh` (nothing flooding) measures the method's
own cost (tmux clients, polling). Prints median / p90 / max of both and the difference.

    cargo build --release && scripts/keys-under-flood.py [--keys 20] [--flood 'yes']
"""
import argparse, os, statistics, subprocess, time

EXE = os.path.join(os.path.dirname(__file__), "..", "target", "release", "brokertui")


def tmux(*args):
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=False).stdout


def screen(session):
    return tmux("capture-pane", "-p", "-t", session)


def wait_for(session, text, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if text in screen(session):
            return True
        time.sleep(0.005)
    return False


def measure(flood_cmd, keys):
    session = f"kuf{os.getpid()}"
    state = f"/tmp/{session}-state"
    tmux("kill-session", "-t", session)
    tmux("new-session", "-d", "-s", session, "-x", "200", "-y", "50",
         f"{EXE} --state-dir {state} -w 'flood={flood_cmd}' -w sh=sh")
    try:
        time.sleep(1.5)
        tmux("send-keys", "-t", session, "2")      # focus the sh pane
        tmux("send-keys", "-t", session, "Enter")  # drive it
        time.sleep(0.5)
        samples = []
        for i in range(keys):
            marker = "QZ"[i % 2] + chr(ord("a") + i % 26) + "X"
            t0 = time.monotonic()
            tmux("send-keys", "-t", session, "-l", marker)
            if not wait_for(session, marker):
                raise SystemExit(f"marker {marker!r} never showed:\n{screen(session)}")
            samples.append((time.monotonic() - t0) * 1000)
            tmux("send-keys", "-t", session, "C-u")  # clear the line for the next one
            time.sleep(0.05)
        return samples
    finally:
        # Leave drive mode (prefix, d), quit, confirm. Pauses between keys: tmux would merge
        # a quick Esc + q into Alt-q.
        for key in ["C-b", "d", "q", "y"]:
            tmux("send-keys", "-t", session, key)
            time.sleep(0.3)
        tmux("kill-session", "-t", session)


def summary(xs):
    xs = sorted(xs)
    q = lambda p: xs[min(len(xs) - 1, int(len(xs) * p))]
    return statistics.median(xs), q(0.9), q(0.99), xs[-1]


def main():
    global EXE
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=20)
    ap.add_argument("--flood", default="yes")
    ap.add_argument("--exe", default=EXE, help="the brokertui binary (default: release build)")
    a = ap.parse_args()
    EXE = a.exe
    base = summary(measure("sh", a.keys))
    flood = summary(measure(a.flood, a.keys))
    print("| case | median | p90 | p99 | max |")
    print("|---|---|---|---|---|")
    print("| nothing flooding (the method's own cost) | %.0f ms | %.0f ms | %.0f ms | %.0f ms |" % base)
    print(f"| `{a.flood}` flooding another pane | %.0f ms | %.0f ms | %.0f ms | %.0f ms |" % flood)
    print("| added by the flood | %+.0f ms | %+.0f ms | %+.0f ms | %+.0f ms |"
          % tuple(f - b for f, b in zip(flood, base)))


if __name__ == "__main__":
    main()
