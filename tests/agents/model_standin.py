#!/usr/bin/env python3
"""Loopback stand-in for the Anthropic Messages API, good enough to drive the
real Claude Code CLI (tested with 2.1.197) through whole conversations offline.

Dependency free (Python >= 3.11 standard library only). The HTTP
scaffolding (handler helpers, SSE chunks, request log, id counter, command
line) is shared with gemini_standin.py and lives in ``standin_http.py`` next
to this file; this file holds the Anthropic-specific routes and rules.

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

import json
import os
import sys
import time

# standin_http.py sits next to this file: importable from any cwd (even -P)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from standin_http import (RUN_TOOL_RE, BaseHandler, State,  # noqa: E402
                          main as serve, one_line, slow_ms)

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
    delay = slow_ms(user_text)
    queued = state.pop_queued_spec("kind", delay)
    if queued is not None:
        return queued
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


class Handler(BaseHandler):
    server_version = "model-standin/1"
    header_subset = HEADER_SUBSET
    api_key_header = "x-api-key"
    classification_field = "kind"
    json_content_type = "application/json"
    sse_content_type = "text/event-stream; charset=utf-8"

    def _extra_headers(self) -> dict:
        return {"request-id": "req_standin_%d" % self.state.next_id()}

    # -- verbs
    def do_GET(self):
        path = self.path.split("?")[0]
        model = self.state.script.get("model", "claude-sonnet-4-5")
        if path in ("/", ""):
            self._log(None, "other")
            self._send_json(200, {"ok": True})
        elif path == "/v1/models":
            self._log(None, "other")
            self._send_json(200, {"data": [{"type": "model", "id": model,
                                            "display_name": model,
                                            "created_at": "2025-01-01T00:00:00Z"}],
                                  "has_more": False, "first_id": model,
                                  "last_id": model})
        elif path.startswith("/v1/models/"):
            mid = path.rsplit("/", 1)[1]
            self._log(None, "other")
            self._send_json(200, {"type": "model", "id": mid, "display_name": mid,
                                  "created_at": "2025-01-01T00:00:00Z"})
        else:
            self._not_found(None)

    def do_POST(self):
        raw, body = self._read_json()
        path = self.path.split("?")[0]
        if path == "/v1/messages/count_tokens":
            n = max(1, len(raw) // 4)
            self._log(body, "other", reply={"input_tokens": n})
            self._send_json(200, {"input_tokens": n})
        elif path == "/v1/messages":
            self._messages(body)
        else:
            self._not_found(body)

    def _not_found(self, body):
        self._log(body, "other", unknown=True)
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
        self._log(body, spec["kind"], rule=spec.get("rule"),
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
        self._start_sse()
        u = usage(body, 1)
        with self._until_client_leaves():
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


def main(argv=None) -> int:
    return serve(__doc__, Handler, argv)


if __name__ == "__main__":
    sys.exit(main())
