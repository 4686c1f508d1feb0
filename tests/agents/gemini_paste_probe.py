"""Probe how the Gemini CLI (0.61.0) takes pastes / typed text + CR written
straight to its PTY.

    python3 gemini_paste_probe.py [paste|big|typed|all]

Spawns gemini_standin.py and `gemini` (fresh HOME from gemini_home.py in a
temp dir) in a 120x40 PTY, waits for the input box plus a settle time, then
writes test inputs and reports per trial whether the prompt reached the
stand-in (submitted=True) or the CR was swallowed (then an extra CR is sent,
which submits the text WITH the extra newline). Results: NOTES.md, section
"Gemini CLI", "Typing / paste timing".

Background (bundle chunk-*.js, `bufferFastReturn`): an Enter key that the CLI
PROCESSES less than 30 ms (FAST_RETURN_TIMEOUT) after an insertable key or a
paste event is turned into shift+Enter, i.e. a newline in the input, not a
submission. The 30 ms are measured on the CLI's event loop, so a busy CLI
(just started, or rendering a large paste) stretches the window.
"""
import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gemini_home  # noqa: E402

SETTLE = float(os.environ.get("SETTLE", "1.5"))

D = tempfile.mkdtemp(prefix="gm_probe_")
os.makedirs(D + "/proj", exist_ok=True)
log = D + "/req.jsonl"
srv = subprocess.Popen([sys.executable, os.path.join(HERE, "gemini_standin.py"),
                        "--port", "0", "--log", log],
                       stdout=subprocess.PIPE, text=True)
port = int(srv.stdout.readline().strip().split("=")[1])
gemini_home.make_home(D + "/home")
env = gemini_home.agent_env(D + "/home", port)
env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
pid, fd = pty.fork()
if pid == 0:
    os.chdir(D + "/proj")
    os.execvpe("gemini", ["gemini"], env)
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
buf = bytearray()
lock = threading.Lock()


def reader():
    while True:
        try:
            b = os.read(fd, 65536)
        except OSError:
            return
        if not b:
            return
        with lock:
            buf.extend(b)


threading.Thread(target=reader, daemon=True).start()
t0 = time.time()
while b"Type your message" not in buf and time.time() - t0 < 60:
    time.sleep(0.02)
print("input box after %.2fs" % (time.time() - t0), flush=True)
time.sleep(SETTLE)
print("bracketed paste mode on (ESC[?2004h seen): %s" % (b"\x1b[?2004h" in buf),
      flush=True)


def log_text():
    try:
        return open(log, encoding="utf-8").read()
    except FileNotFoundError:
        return ""


def wait_ack(tag, to):
    t = time.time()
    while time.time() - t < to:
        if "ack: " + tag in log_text():
            return True
        time.sleep(0.05)
    return False


def wait_quiet(q=0.6, to=8):
    """Wait until the CLI has written nothing for q seconds."""
    t = time.time()
    last = len(buf)
    lt = time.time()
    while time.time() - t < to:
        time.sleep(0.05)
        if len(buf) != last:
            last = len(buf)
            lt = time.time()
        elif time.time() - lt >= q:
            return


results = []


def trial(name, tag, writes):
    for w, gap in writes:
        os.write(fd, w)
        if gap:
            time.sleep(gap)
    ok = wait_ack(tag, 3.0)
    ok2 = None
    if not ok:
        time.sleep(0.2)
        os.write(fd, b"\r")
        ok2 = wait_ack(tag, 4)
    print("%-46s submitted=%s%s" % (name, ok, "" if ok else
                                    " (extra CR -> %s)" % ok2), flush=True)
    results.append({"name": name, "submitted": ok, "extra_cr": ok2})
    time.sleep(0.5)
    wait_quiet()


n = 0
mode = sys.argv[1] if len(sys.argv) > 1 else "all"
if mode in ("all", "paste"):
    for gap in (0, 0.005, 0.01, 0.03, 0.05, 0.1, 0.2):
        for rep in range(3):
            n += 1
            tag = "BP%d_" % n
            body = (tag + " first line\nsecond line\nthird line").encode()
            if gap:
                w = [(b"\x1b[200~" + body + b"\x1b[201~", gap), (b"\r", 0)]
            else:
                w = [(b"\x1b[200~" + body + b"\x1b[201~\r", 0)]
            trial("bracketed 3 lines, CR after %gms" % (gap * 1000), tag, w)
if mode in ("all", "big"):
    big = "\n".join("line %d of a long pasted block with filler text to make "
                    "it big" % i for i in range(60))
    for gap in (0.03, 0.1, 0.2, 0.5):
        for rep in range(3):
            n += 1
            tag = "BQ%d_" % n
            body = (tag + " first\n" + big).encode()
            trial("bracketed %dB/61 lines, CR after %gms"
                  % (len(body), gap * 1000), tag,
                  [(b"\x1b[200~" + body + b"\x1b[201~", gap), (b"\r", 0)])
if mode in ("all", "typed"):
    for ln in (5, 20, 60, 200):
        for rep in range(2):
            n += 1
            tag = "TW%d_" % n
            s = (tag + " " + "z" * ln)[:max(ln, len(tag))]
            trial("one write %d chars + CR" % ln, tag, [(s.encode() + b"\r", 0)])
    for ln in (20, 200):
        for gap in (0.01, 0.03, 0.05, 0.1):
            for rep in range(2):
                n += 1
                tag = "TG%d_" % n
                s = (tag + " " + "z" * ln)[:ln]
                trial("write %d chars, CR after %gms" % (ln, gap * 1000), tag,
                      [(s.encode(), gap), (b"\r", 0)])
    # typed one character per write, 5 ms apart, then CR after 100 ms
    n += 1
    tag = "TK%d_" % n
    trial("keys 5ms apart, CR after 100ms", tag,
          [(bytes([c]), 0.005) for c in (tag + " keyed").encode()]
          + [(b"", 0.1), (b"\r", 0)])
os.killpg(pid, 15)  # pty.fork: the child leads its own session / group
time.sleep(0.5)
try:
    os.kill(pid, 9)
except ProcessLookupError:
    pass
srv.kill()
print(json.dumps({"dir": D, "trials": len(results),
                  "submitted": sum(1 for r in results if r["submitted"])}))
