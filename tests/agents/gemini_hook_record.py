#!/usr/bin/env python3
"""Hook command for Gemini CLI tests: append the hook's stdin JSON to a file.

    python3 gemini_hook_record.py EVENT OUTFILE [SLEEP_SECONDS]

Writes one JSON line: {"event", "t_start", "t_end", "pid", "payload",
"env": {GEMINI_*, CLAUDE_PROJECT_DIR}} (keys/tokens left out). SLEEP_SECONDS
(optional) keeps the hook busy to observe whether the CLI waits for it.
Prints `{}` (Gemini CLI parses hook stdout as JSON; an empty object changes
nothing) and exits 0, so it never changes the agent's behaviour.
"""
import json
import os
import sys
import time

t0 = time.time()
event = sys.argv[1] if len(sys.argv) > 1 else "?"
out = sys.argv[2] if len(sys.argv) > 2 else "/tmp/gemini_hooks.jsonl"
nap = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
raw = sys.stdin.read()
try:
    payload = json.loads(raw)
except ValueError:
    payload = {"_raw": raw}
if nap:
    time.sleep(nap)
env = {k: v for k, v in os.environ.items()
       if (k.startswith("GEMINI") or k == "CLAUDE_PROJECT_DIR")
       and "KEY" not in k and "TOKEN" not in k}
with open(out, "a", encoding="utf-8") as f:
    f.write(json.dumps({"event": event, "t_start": round(t0, 3),
                        "t_end": round(time.time(), 3), "pid": os.getpid(),
                        "payload": payload, "env": env}) + "\n")
sys.stdout.write("{}")
