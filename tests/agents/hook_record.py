#!/usr/bin/env python3
"""Hook command for Claude Code tests: append the hook's stdin JSON to a file.

    python3 hook_record.py EVENT OUTFILE [SLEEP_SECONDS]

Writes one JSON line: {"event", "t_start", "t_end", "pid", "payload",
"env": {CLAUDE_PROJECT_DIR, ...}}. SLEEP_SECONDS (optional) keeps the hook busy
to observe whether Claude Code waits for it. Always exits 0 and prints
nothing, so it never changes the agent's behaviour.
"""
import json
import os
import sys
import time

t0 = time.time()
event = sys.argv[1] if len(sys.argv) > 1 else "?"
out = sys.argv[2] if len(sys.argv) > 2 else "/tmp/claude_hooks.jsonl"
nap = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
raw = sys.stdin.read()
try:
    payload = json.loads(raw)
except ValueError:
    payload = {"_raw": raw}
if nap:
    time.sleep(nap)
env = {k: v for k, v in os.environ.items()
       if k.startswith("CLAUDE") and "KEY" not in k and "TOKEN" not in k}
with open(out, "a", encoding="utf-8") as f:
    f.write(json.dumps({"event": event, "t_start": round(t0, 3),
                        "t_end": round(time.time(), 3), "pid": os.getpid(),
                        "payload": payload, "env": env}) + "\n")
