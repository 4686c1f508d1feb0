#!/usr/bin/env python3
"""Loopback stand-in for the Anthropic Messages API, good enough to drive the
real Claude Code CLI (tested with 2.1.197) through whole conversations offline.

Dependency free (Python >= 3.11 standard library only).

Usage
-----
    python3 model_standin.py --port 0 --log /tmp/req.jsonl [--script s.json]

The first line on stdout is ``PORT=<n>`` (flushed), so a test can start the
server with ``--port 0`` and read the chosen port. Point the agent at it with
``ANTHROPIC_BASE_URL=http://127.0.0.1:<n>`` and any ``ANTHROPIC_API_KEY``.

Endpoints
---------
* ``POST /v1/messages``              streaming (SSE) and non-streaming
* ``POST /v1/messages/count_tokens`` ``{"input_tokens": <len/4>}``
* ``GET  /v1/models[/<id>]``         a small model list
* ``HEAD|GET /``                     200 (connectivity probes)
* anything else                      404 with an Anthropic-style error body,
                                     logged with ``"unknown": true`` so new
                                     start-up calls are easy to spot.

``--log FILE`` gets one JSON line per request received: time, method, path,
a subset of headers (the api key reduced to its last 4 chars), the full JSON
body, how the request was classified (``kind``: main/side/other) and what was
answered (``reply``). This log is the proof of what the agent sent.

Main vs. side requests
----------------------
Claude Code sends several model calls besides the conversation: session
title / topic generation, "quota" probes (``max_tokens: 1``), Bash command
prefix/safety checks, conversation summaries, etc. Those must not consume the
script. The rule used here:

    A request is MAIN  iff  its body has a non-empty ``tools`` list that
    contains a tool named "Bash" (the full Claude Code tool set), AND
    ``max_tokens`` > 1.
    Everything else is SIDE and gets a short fixed text reply
    (``side_text`` from the script, default "Standin topic").

Observed with 2.1.197 (interactive and ``-p``): the only side call is the
session-title generation, sent once per session on the first prompt with the
main model (claude-opus-4-8), ``"tools": []`` and
``output_config.format = {"type": "json_schema", ...{"title": string}}``.
Side calls that ask for a JSON schema get JSON filled from the schema
(``{"title": "Standin topic"}``); a non-JSON answer makes the CLI retry the
title call on every turn. Main calls carry 24-28 tools (Agent, Bash, Edit,
Read, Write, ...), ``stream: true``, ``thinking: {"type": "adaptive"}``, and
the messages list may END with a ``{"role": "system"}`` message (beta
"mid-conversation-system"), so "last user message" means the last message
whose role is "user". Only ``HEAD /`` (a connectivity probe, answered 200)
and ``POST /v1/messages?beta=true`` were seen; count_tokens and /v1/models are
answered anyway for other versions. The rule does not depend on the model
name nor on the side prompt wording; if a future version attached tools to a
side call, ``side_markers`` in the script (substrings of the system prompt)
force such a request to SIDE.

What a MAIN request gets (decided on the LAST user message only)
---------------------------------------------------------------
1. A queued scripted reply, if the script has ``"queue"`` entries left (each
   main request pops one; see below). Otherwise the marker rules:
2. the last user message contains a ``tool_result`` block
       -> text ``done: <first 40 chars of the tool result text>``
3. the user's text contains ``RUN_TOOL:<shell command>`` (to end of line)
       -> a ``tool_use`` of ``Bash`` with input
          ``{"command": "<cmd>", "description": "run it"}``
          and ``stop_reason: "tool_use"``. Claude Code then shows its
          permission dialog unless the command is allowed: read-only
          commands (echo, ls, cat...) are auto-allowed by 2.1.197, so use a
          writing one (``RUN_TOOL:touch x.txt``) to get the dialog.
4. else -> text ``ack: <first 60 chars of the user text>``
``SLOW:<ms>`` anywhere in the user's text delays the streamed answer by that
many milliseconds (after ``message_start``, spread over the deltas), so the
"working" spinner can be observed. The user's text is the concatenation of the
text blocks of the last user message that are not ``<system-reminder>``
blocks (Claude Code injects those).

Script file (all keys optional)
-------------------------------
    {
      "model": "claude-sonnet-4-5",     # model echoed when unknown
      "side_text": "Standin topic",
      "chunk_chars": 12,                # characters per text_delta
      "chunk_delay_ms": 0,              # pause between deltas
      "side_markers": [],               # system-prompt substrings => side
      "queue": [                        # consumed by main requests in order
        {"text": "hello", "delay_ms": 0},
        {"tool_use": {"name": "Bash",
                      "input": {"command": "ls", "description": "list"}}}
      ]
    }
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HEADER_SUBSET = (
    "user-agent",
    "content-type",
    "anthropic-version",
    "anthropic-beta",
    "x-app",
    "x-stainless-lang",
    "x-stainless-package-version",
    "x-stainless-retry-count",
    "x-claude-code-session-id",
    "accept",
)

RUN_TOOL_RE = re.compile(r"RUN_TOOL:([^\r\n]+)")
SLOW_RE = re.compile(r"SLOW:(\d+)")


class State:
    def __init__(self, script: dict, log_path: str | None):
        self.script = script
        self.queue = list(script.get("queue", []))
        self.log_path = log_path
        self.lock = threading.Lock()
        self.counter = 0

    def next_id(self) -> int:
        with self.lock:
            self.counter += 1
            return self.counter

    def pop_queue(self):
        with self.lock:
            if self.queue:
                return self.queue.pop(0)
        return None

    def log(self, entry: dict) -> None:
        if not self.log_path:
            return
        line = json.dumps(entry, ensure_ascii=False)
        with self.lock:
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(line + "\n")


# ---------------------------------------------------------------- analysis


def _blocks(content):
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [b for b in content if isinstance(b, dict)]
    return []


def _tool_result_text(block: dict) -> str:
    c = block.get("content", "")
    if isinstance(c, str):
        return c
    parts = []
    for b in _blocks(c):
        if b.get("type") == "text":
            parts.append(b.get("text", ""))
    return "\n".join(parts)


def last_user(body: dict):
    """Return (user_text, tool_result_text_or_None) of the last user message."""
    msgs = body.get("messages") or []
    for m in reversed(msgs):
        if m.get("role") != "user":
            continue
        texts, tool_result = [], None
        for b in _blocks(m.get("content")):
            t = b.get("type")
            if t == "tool_result" and tool_result is None:
                tool_result = _tool_result_text(b)
            elif t == "text":
                txt = b.get("text", "")
                if txt.lstrip().startswith("<system-reminder>"):
                    continue
                texts.append(txt)
        return "\n".join(texts), tool_result
    return "", None


def system_text(body: dict) -> str:
    s = body.get("system")
    if isinstance(s, str):
        return s
    return "\n".join(b.get("text", "") for b in _blocks(s))


def classify(body: dict, script: dict) -> str:
    tools = body.get("tools") or []
    names = {t.get("name") for t in tools if isinstance(t, dict)}
    if "Bash" not in names:
        return "side"
    if (body.get("max_tokens") or 0) <= 1:
        return "side"
    sys_txt = system_text(body)
    for marker in script.get("side_markers", []):
        if marker in sys_txt:
            return "side"
    return "main"


def one_line(s: str) -> str:
    return " ".join(s.split())


def fill_schema(schema: dict, text: str):
    """A minimal value satisfying a JSON schema (strings get `text`)."""
    t = schema.get("type")
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    if t == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {k: fill_schema(v, text) for k, v in props.items()}
    if t == "array":
        return []
    if t == "boolean":
        return False
    if t in ("integer", "number"):
        return 0
    if t == "null":
        return None
    return text


def side_text(body: dict, script: dict) -> str:
    text = script.get("side_text", "Standin topic")
    fmt = (body.get("output_config") or {}).get("format") or {}
    if fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
        # e.g. session title: {"title": "..."}; must be valid JSON or the CLI
        # retries the side call on every turn.
        return json.dumps(fill_schema(fmt["schema"], text))
    return text


def decide(body: dict, state: State) -> dict:
    """Return a reply spec: {"text": str} or {"tool_use": {...}}, + delay_ms."""
    script = state.script
    kind = classify(body, script)
    if kind == "side":
        return {"kind": "side", "text": side_text(body, script), "delay_ms": 0}
    user_text, tool_result = last_user(body)
    m = SLOW_RE.search(user_text)
    delay = int(m.group(1)) if m else 0
    queued = state.pop_queue()
    if queued is not None:
        spec = dict(queued)
        spec.setdefault("delay_ms", delay)
        spec["kind"] = "main"
        spec["rule"] = "queue"
        return spec
    if tool_result is not None:
        return {"kind": "main", "rule": "tool_result",
                "text": "done: " + one_line(tool_result)[:40], "delay_ms": delay}
    m = RUN_TOOL_RE.search(user_text)
    if m:
        cmd = m.group(1).strip()
        return {"kind": "main", "rule": "run_tool", "delay_ms": delay,
                "tool_use": {"name": "Bash",
                             "input": {"command": cmd, "description": "run it"}}}
    return {"kind": "main", "rule": "ack",
            "text": "ack: " + one_line(user_text)[:60], "delay_ms": delay}


def content_blocks(spec: dict, state: State) -> list[dict]:
    if "tool_use" in spec:
        tu = spec["tool_use"]
        return [{"type": "tool_use",
                 "id": tu.get("id") or "toolu_standin_%04d" % state.next_id(),
                 "name": tu.get("name", "Bash"),
                 "input": tu.get("input", {})}]
    return [{"type": "text", "text": spec.get("text", "")}]


def usage(body: dict, out_tokens: int) -> dict:
    return {"input_tokens": max(1, len(json.dumps(body.get("messages", []))) // 4),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": out_tokens}


# ---------------------------------------------------------------- handler


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "model-standin/1"
    state: State  # set on the class by main()

    def log_message(self, fmt, *args):  # keep stderr quiet
        pass

    # -- helpers
    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
            return data
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _headers_subset(self) -> dict:
        h = {k: self.headers[k] for k in HEADER_SUBSET if k in self.headers}
        key = self.headers.get("x-api-key")
        if key:
            h["x-api-key"] = "..." + key[-4:]
        auth = self.headers.get("authorization")
        if auth:
            h["authorization"] = auth.split(" ")[0] + " ..." + auth[-4:]
        return h

    def _send_json(self, code: int, obj, extra: dict | None = None):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", "req_standin_%d" % self.state.next_id())
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _chunk(self, data: bytes):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _sse(self, event: str, obj: dict):
        self._chunk(("event: %s\ndata: %s\n\n" % (event, json.dumps(obj))).encode())

    def _log(self, body, **extra):
        entry = {"t": round(time.time(), 3), "method": self.command,
                 "path": self.path, "headers": self._headers_subset(),
                 "body": body}
        entry.update(extra)
        self.state.log(entry)

    # -- verbs
    def do_HEAD(self):
        self._log(None, kind="other")
        self._send_json(200, {})

    def do_GET(self):
        path = self.path.split("?")[0]
        model = self.state.script.get("model", "claude-sonnet-4-5")
        if path in ("/", ""):
            self._log(None, kind="other")
            self._send_json(200, {"ok": True})
        elif path == "/v1/models":
            self._log(None, kind="other")
            self._send_json(200, {"data": [{"type": "model", "id": model,
                                            "display_name": model,
                                            "created_at": "2025-01-01T00:00:00Z"}],
                                  "has_more": False, "first_id": model,
                                  "last_id": model})
        elif path.startswith("/v1/models/"):
            mid = path.rsplit("/", 1)[1]
            self._log(None, kind="other")
            self._send_json(200, {"type": "model", "id": mid, "display_name": mid,
                                  "created_at": "2025-01-01T00:00:00Z"})
        else:
            self._not_found(None)

    def do_POST(self):
        raw = self._read_body()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {"_raw": raw.decode("utf-8", "replace")}
        path = self.path.split("?")[0]
        if path == "/v1/messages/count_tokens":
            n = max(1, len(raw) // 4)
            self._log(body, kind="other", reply={"input_tokens": n})
            self._send_json(200, {"input_tokens": n})
        elif path == "/v1/messages":
            self._messages(body)
        else:
            self._not_found(body)

    def _not_found(self, body):
        self._log(body, kind="other", unknown=True)
        self._send_json(404, {"type": "error", "error": {
            "type": "not_found_error", "message": "standin: no route " + self.path}})

    def _messages(self, body: dict):
        state = self.state
        spec = decide(body, state)
        blocks = content_blocks(spec, state)
        stop = "tool_use" if blocks[0]["type"] == "tool_use" else "end_turn"
        model = body.get("model") or state.script.get("model", "claude-sonnet-4-5")
        msg_id = "msg_standin_%04d" % state.next_id()
        out_tokens = max(1, len(json.dumps(blocks)) // 4)
        self._log(body, kind=spec["kind"], rule=spec.get("rule"),
                  reply={"stop_reason": stop, "content": blocks,
                         "delay_ms": spec.get("delay_ms", 0)})
        if not body.get("stream"):
            time.sleep(spec.get("delay_ms", 0) / 1000.0)
            self._send_json(200, {"id": msg_id, "type": "message",
                                  "role": "assistant", "model": model,
                                  "content": blocks, "stop_reason": stop,
                                  "stop_sequence": None,
                                  "usage": usage(body, out_tokens)})
            return
        self._stream(body, spec, blocks, stop, model, msg_id, out_tokens)

    def _stream(self, body, spec, blocks, stop, model, msg_id, out_tokens):
        script = self.state.script
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("request-id", "req_standin_%d" % self.state.next_id())
        self.end_headers()
        u = usage(body, 1)
        try:
            self._sse("message_start", {"type": "message_start", "message": {
                "id": msg_id, "type": "message", "role": "assistant",
                "model": model, "content": [], "stop_reason": None,
                "stop_sequence": None, "usage": u}})
            # pieces of the answer, each an SSE delta
            pieces: list[tuple[int, dict]] = []
            starts: list[dict] = []
            step = max(1, int(script.get("chunk_chars", 12)))
            for i, b in enumerate(blocks):
                if b["type"] == "text":
                    starts.append({"type": "text", "text": ""})
                    txt = b["text"]
                    for j in range(0, max(1, len(txt)), step):
                        pieces.append((i, {"type": "text_delta",
                                           "text": txt[j:j + step]}))
                else:
                    starts.append({"type": "tool_use", "id": b["id"],
                                   "name": b["name"], "input": {}})
                    js = json.dumps(b["input"])
                    for j in range(0, len(js), step):
                        pieces.append((i, {"type": "input_json_delta",
                                           "partial_json": js[j:j + step]}))
            self._sse("ping", {"type": "ping"})
            delay = spec.get("delay_ms", 0) / 1000.0
            per_piece = delay / max(1, len(pieces))
            extra = script.get("chunk_delay_ms", 0) / 1000.0
            if delay and not pieces:
                time.sleep(delay)
            current = -1
            for idx, delta in pieces:
                if idx != current:
                    if current >= 0:
                        self._sse("content_block_stop",
                                  {"type": "content_block_stop", "index": current})
                    current = idx
                    self._sse("content_block_start",
                              {"type": "content_block_start", "index": idx,
                               "content_block": starts[idx]})
                if per_piece or extra:
                    time.sleep(per_piece + extra)
                self._sse("content_block_delta",
                          {"type": "content_block_delta", "index": idx,
                           "delta": delta})
            if current >= 0:
                self._sse("content_block_stop",
                          {"type": "content_block_stop", "index": current})
            self._sse("message_delta", {"type": "message_delta",
                                        "delta": {"stop_reason": stop,
                                                  "stop_sequence": None},
                                        "usage": {"output_tokens": out_tokens}})
            self._sse("message_stop", {"type": "message_stop"})
            self._chunk(b"")  # terminating zero-length chunk: b"0\r\n\r\n"
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--log", default=None, help="append JSON lines here")
    ap.add_argument("--script", default=None, help="JSON script file")
    args = ap.parse_args(argv)
    script = {}
    if args.script:
        with open(args.script, encoding="utf-8") as f:
            script = json.load(f)
    Handler.state = State(script, args.log)
    srv = ThreadingHTTPServer((args.host, args.port), Handler)
    srv.daemon_threads = True
    print("PORT=%d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
