#!/usr/bin/env python3
"""`--serve` with nobody watching, measured from outside (BENCHMARKS.md).

A worker `cat`s a file of SGR-coloured lines (256 MiB by default) in a 200x50 PTY; the time
runs from the spawn request until `GET /api/spawned` shows the worker exited. Beside it, in
alternating runs: the same `cat` in a PTY read by a plain reader that discards the bytes
(the machine's limit), and in a detached tmux session (until `tmux wait-for` fires). Prints
each run, then medians, ranges and ratios.

    cargo build --release && scripts/serve-unwatched.py [--mib 256] [--reps 5] [--exe PATH]
"""
import argparse, fcntl, json, os, pty, statistics, struct, subprocess, tempfile, termios, time
import urllib.request

EXE = os.path.join(os.path.dirname(__file__), "..", "target", "release", "brokertui")


def make_file(path, mib):
    line = b"".join(b"\x1b[3%dmword%d\x1b[0m " % (i % 8, i) for i in range(12)) + b"\n"
    with open(path, "wb") as f:
        chunk = line * (1 << 16 // len(line) + 1)
        left = mib << 20
        while left > 0:
            f.write(chunk[:left])
            left -= len(chunk[:left])


def raw(path):
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    t = time.monotonic()
    child = subprocess.Popen(["cat", path], stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    while True:
        try:
            if not os.read(master, 1 << 16):
                break
        except OSError:
            break  # EIO: the child closed its side
    child.wait()
    os.close(master)
    return time.monotonic() - t


def tmux(path):
    sock = f"su{os.getpid()}"
    t = time.monotonic()
    subprocess.run(["tmux", "-L", sock, "new-session", "-d", "-x", "200", "-y", "50",
                    f"cat {path}; tmux -L {sock} wait-for -S done; sleep 5"], check=True)
    subprocess.run(["tmux", "-L", sock, "wait-for", "done"], check=True)
    elapsed = time.monotonic() - t
    subprocess.run(["tmux", "-L", sock, "kill-server"], check=False)
    return elapsed


def call(conn, method, path, body=None):
    req = urllib.request.Request(conn["url"] + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": "Bearer " + conn["token"],
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"null")


def start_broker(exe, state):
    """`brokertui --serve` on `state`; returns the process and its connection.json."""
    broker = subprocess.Popen([exe, "--serve", "--state-dir", state],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    conn_file = os.path.join(state, "connection.json")
    while not os.path.exists(conn_file):
        time.sleep(0.02)
    time.sleep(0.05)
    return broker, json.load(open(conn_file))


def serve(path, exe):
    state = tempfile.mkdtemp(prefix="su-state-")
    broker, conn = start_broker(exe, state)
    try:
        t = time.monotonic()
        call(conn, "POST", "/api/spawn",
             {"name": "cat", "cmd": ["cat", path], "rows": 50, "cols": 200})
        while True:
            workers = call(conn, "GET", "/api/spawned")["workers"]
            if any(w["name"] == "cat" and w["state"] == "exited" for w in workers):
                return time.monotonic() - t
            time.sleep(0.005)
    finally:
        broker.terminate()
        broker.wait()
        subprocess.run(["rm", "-rf", state], check=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--exe", default=EXE)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "sgr.txt")
        make_file(path, a.mib)
        rates = {"raw": [], "serve": [], "tmux": []}
        for rep in range(a.reps):
            for name, f in (("raw", lambda: raw(path)), ("serve", lambda: serve(path, a.exe)),
                            ("tmux", lambda: tmux(path))):
                rates[name].append(a.mib / f())
            print(f"run {rep + 1}: " + ", ".join(f"{k} {v[-1]:.0f}" for k, v in rates.items())
                  + " MiB/s", flush=True)
        med = {k: statistics.median(v) for k, v in rates.items()}
        print("| path | median MiB/s | range |")
        print("|---|---|---|")
        for k, v in rates.items():
            print(f"| {k} | {med[k]:.0f} | {min(v):.0f}–{max(v):.0f} |")
        print(f"serve/raw {med['serve'] / med['raw']:.2f}, serve/tmux {med['serve'] / med['tmux']:.2f}")


if __name__ == "__main__":
    main()
