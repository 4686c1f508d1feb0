#!/usr/bin/env python3
"""Loopback stand-in for the Gemini API (generativelanguage v1beta), good
enough to drive the real Gemini CLI (tested with @google/gemini-cli 0.61.0)
through whole conversations offline.

Needs nothing but the Python >= 3.11 standard library and its sibling
``standin_http.py``, which holds the HTTP plumbing this stand-in shares with
model_standin.py (request/response helpers, SSE chunks, the request log and
id counter, the command line); only the Gemini routes and rules are here.

Usage
-----
    python3 gemini_standin.py --port 0 --log /tmp/req.jsonl [--script s.json]

The first line on stdout is ``PORT=<n>`` (flushed). Point the CLI at it with
``GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:<n>``, ``GEMINI_API_KEY=<any>`` and
a settings file selecting ``gemini-api-key`` auth (see gemini_home.py).

Endpoints (``<v>`` = any version segment, v1beta is what the CLI uses)
--------------------------------------------------------------------
* ``POST /<v>/models/<m>:streamGenerateContent?alt=sse``  SSE, ``data: {json}\\n\\n``
* ``POST /<v>/models/<m>:generateContent``                JSON
* ``POST /<v>/models/<m>:countTokens``      ``{"totalTokens": <len/4>}``
* ``POST /<v>/models/<m>:embedContent`` / ``:batchEmbedContents``  zero vectors
* ``GET  /<v>/models[/<m>]``                a small model list / one model
* ``HEAD|GET /``                            200
* anything else: 404 with a Google-style error body, logged with
  ``"unknown": true`` so new start-up calls are easy to spot.

``--log FILE`` gets one JSON line per request: t, method, path, a header
subset (API key reduced to its last 4 chars), the full JSON body,
``classification`` (main / side-json / side-text / other / unknown), the
``rule`` that produced the answer and the ``reply`` (parts, finishReason,
delay_ms).

Observed with 0.61.0 (tests/agents/NOTES.md, "Gemini CLI"; ~190 requests,
interactive and ``-p``): start-up sends NOTHING to the base URL. Each prompt
produces exactly one side call, the model router's classifier
(``gemini-3.5-flash-lite:generateContent``, system prompt "You are a
specialized Task Routing AI", JSON schema ``{complexity_reasoning: STRING,
complexity_score: INTEGER 1-100}``; score 1 routes to ``gemini-3.8-flash``,
an invalid 0 fell back to ``gemini-3.1-pro-preview``), then the main call
``<model>:streamGenerateContent?alt=sse`` with 16 function declarations
(``run_shell_command``, ``write_file``, ``replace``, ``read_file``,
``ask_user``, ...; ``parametersJsonSchema``) and a ~30 KB systemInstruction.
The first user content carries a ``<session_context>`` text part before the
prompt. After a tool call the CLI sends the functionCall back with
``thoughtSignature: "skip_thought_signature_validator"`` and the result as a
user ``functionResponse`` part (``response.output``). No countTokens, models
list, embeddings, next-speaker check (``model.skipNextSpeakerCheck`` defaults
to true) or Code Assist (``/v1internal:*``, OAuth only) calls were seen and
no 404s; those routes are answered anyway for other versions / settings.
Headers: ``x-goog-api-key``, ``user-agent: GeminiCLI-tui/0.61.0/<model>
(linux; x64; terminal)``, ``x-goog-api-client: google-genai-sdk/1.30.0 ...``.

Classification
--------------
* ``side-json``: ``generationConfig.responseMimeType == application/json``
  or a ``responseJsonSchema`` / ``responseSchema``. Answered with JSON filled
  from the schema: enums take ``"user"`` if allowed (a next-speaker check
  must say "user", or the CLI keeps talking), else ``"flash"`` if allowed,
  else the first value; strings get ``"standin"``; integers/numbers the
  schema's ``minimum`` or 1 (the router's score); booleans false; arrays [].
* ``side-text``: no function declarations AND not streaming (summaries,
  titles, loop checks...) -> text ``Standin summary``.
* ``main``: everything else (the conversation). Decided on the LAST content
  whose role is "user", ignoring text parts that start with
  ``<session_context>`` (and a few similar wrappers) and thought parts:

  1. a queued scripted reply, if the script has ``queue`` entries left;
  2. the content has a ``functionResponse`` part -> text ``done``;
  3. its text contains ``RUN_TOOL:<cmd>`` (to end of line) -> a
     ``functionCall`` of the shell tool found in the request's function
     declarations (a name containing "shell", normally ``run_shell_command``),
     args ``{"command": "<cmd>"}``, finishReason STOP. The CLI then asks for
     confirmation (default approval mode);
  4. else text ``ack: <first 60 chars of the user text>``.

  ``SLOW:<ms>`` anywhere in the user's text delays the answer: the SSE
  response headers go out at once, the first data chunk after <ms>.

Script file (all keys optional)
-------------------------------
    {
      "model_version": "gemini-standin",   # echoed as modelVersion
      "side_text": "Standin summary",
      "chunk_chars": 12,                   # characters per SSE text chunk
      "chunk_delay_ms": 0,                 # pause between chunks
      "queue": [                           # consumed by main requests in order
        {"text": "hello", "delay_ms": 0},
        {"function_call": {"name": "run_shell_command",
                           "args": {"command": "ls"}}}
      ]
    }
"""

from __future__ import annotations

import json
import os
import re
import sys
import time

# standin_http.py sits next to this file: importable from any cwd (even -P)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from standin_http import (RUN_TOOL_RE, BaseHandler, State,  # noqa: E402
                          main as serve, one_line, slow_ms)

HEADER_SUBSET = (
    "user-agent",
    "content-type",
    "accept",
    "x-goog-api-client",
    "x-gemini-api-privileged-user-id",
)

# Text parts the CLI adds to the user's turn (environment context); skipped
# when looking for the user's own text.
CONTEXT_PART_RE = re.compile(r"\s*<(session_context|system-reminder|"
                             r"hook_context|ide_context)>")
MODEL_PATH_RE = re.compile(r"^/(v[0-9a-z]+)/models/([^:/]+):([A-Za-z]+)$")

KNOWN_MODELS = (
    "gemini-3.1-pro-preview",
    "gemini-3.5-flash",
    "gemini-3.5-flash-lite",
    "gemini-3-flash-preview",
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
)


# ---------------------------------------------------------------- analysis


def function_names(body: dict) -> list[str]:
    names = []
    for t in body.get("tools") or []:
        if not isinstance(t, dict):
            continue
        for fd in t.get("functionDeclarations") or t.get("function_declarations") or []:
            if isinstance(fd, dict) and fd.get("name"):
                names.append(fd["name"])
    return names


def shell_tool(body: dict) -> str:
    names = function_names(body)
    if "run_shell_command" in names:
        return "run_shell_command"
    for n in names:
        if "shell" in n.lower():
            return n
    return "run_shell_command"


def gen_config(body: dict) -> dict:
    return body.get("generationConfig") or body.get("generation_config") or {}


def json_schema(body: dict):
    """(wants_json, schema_or_None)."""
    gc = gen_config(body)
    schema = gc.get("responseJsonSchema") or gc.get("responseSchema") \
        or gc.get("response_json_schema") or gc.get("response_schema")
    wants = (gc.get("responseMimeType") or gc.get("response_mime_type")
             or "").lower() == "application/json"
    return (wants or schema is not None), schema


def last_user(body: dict):
    """(text, has_function_response, function_response_summary) of the last
    content whose role is "user"."""
    for c in reversed(body.get("contents") or []):
        if not isinstance(c, dict) or c.get("role", "user") != "user":
            continue
        texts, fr = [], None
        for p in c.get("parts") or []:
            if not isinstance(p, dict):
                continue
            if "functionResponse" in p and fr is None:
                fr = json.dumps(p["functionResponse"].get("response", {}))
            elif isinstance(p.get("text"), str):
                if p.get("thought") or CONTEXT_PART_RE.match(p["text"]):
                    continue
                texts.append(p["text"])
        return "\n".join(texts), fr is not None, fr
    return "", False, None


def fill_schema(schema, text: str = "standin"):
    """A small value satisfying a JSON schema / Gemini Schema object."""
    if not isinstance(schema, dict):
        return text
    t = schema.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), t[0] if t else None)
    if isinstance(t, str):
        t = t.lower()
    enum = schema.get("enum")
    if enum:
        for pref in ("user", "flash"):
            if pref in enum:
                return pref
        return enum[0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return fill_schema(schema[key][0], text)
    if t == "object" or "properties" in schema:
        props = schema.get("properties", {}) or {}
        return {k: fill_schema(v, text) for k, v in props.items()}
    if t == "array":
        return []
    if t == "boolean":
        return False
    if t in ("integer", "number"):
        return schema.get("minimum", 1)
    if t == "null":
        return None
    return text


def decide(body: dict, state: State, streaming: bool) -> dict:
    """A reply spec: {"text": str} or {"function_call": {...}}, + delay_ms,
    classification, rule."""
    script = state.script
    wants_json, schema = json_schema(body)
    if wants_json:
        value = fill_schema(schema) if schema is not None else {}
        return {"classification": "side-json", "rule": "schema",
                "text": json.dumps(value), "delay_ms": 0}
    if not function_names(body) and not streaming:
        return {"classification": "side-text", "rule": "side",
                "text": script.get("side_text", "Standin summary"),
                "delay_ms": 0}
    user_text, has_fr, _fr = last_user(body)
    delay = slow_ms(user_text)
    queued = state.pop_queued_spec("classification", delay)
    if queued is not None:
        return queued
    if has_fr:
        return {"classification": "main", "rule": "function_response",
                "text": "done", "delay_ms": delay}
    m = RUN_TOOL_RE.search(user_text)
    if m:
        return {"classification": "main", "rule": "run_tool", "delay_ms": delay,
                "function_call": {"name": shell_tool(body),
                                  "args": {"command": m.group(1).strip()}}}
    return {"classification": "main", "rule": "ack",
            "text": "ack: " + one_line(user_text)[:60], "delay_ms": delay}


def usage(body: dict, out_tokens: int) -> dict:
    prompt = max(1, len(json.dumps(body.get("contents", []))) // 4)
    return {"promptTokenCount": prompt,
            "candidatesTokenCount": out_tokens,
            "totalTokenCount": prompt + out_tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}]}


def parts_of(spec: dict) -> list[dict]:
    if "function_call" in spec:
        fc = spec["function_call"]
        return [{"functionCall": {"name": fc.get("name", "run_shell_command"),
                                  "args": fc.get("args", {})}}]
    return [{"text": spec.get("text", "")}]


def model_entry(name: str) -> dict:
    return {"name": "models/" + name, "version": "001",
            "displayName": name, "description": "standin",
            "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
            "supportedGenerationMethods": ["generateContent", "countTokens",
                                           "streamGenerateContent"],
            "temperature": 1.0, "topP": 0.95, "topK": 64,
            "thinking": True}


# ---------------------------------------------------------------- handler


class Handler(BaseHandler):
    server_version = "gemini-standin/1"
    header_subset = HEADER_SUBSET
    api_key_header = "x-goog-api-key"
    classification_field = "classification"
    json_content_type = "application/json; charset=UTF-8"
    sse_content_type = "text/event-stream"

    def _not_found(self, body):
        self._log(body, "unknown", unknown=True)
        self._send_json(404, {"error": {
            "code": 404, "status": "NOT_FOUND",
            "message": "standin: no route for %s %s" % (self.command, self.path)}})

    # -- verbs
    def do_GET(self):
        path = self.path.split("?")[0].rstrip("/")
        if path == "":
            self._log(None, "other")
            self._send_json(200, {"ok": True})
            return
        m = re.match(r"^/(v[0-9a-z]+)/models(?:/([^:/]+))?$", path)
        if m:
            self._log(None, "other")
            if m.group(2):
                self._send_json(200, model_entry(m.group(2)))
            else:
                self._send_json(200, {"models": [model_entry(n)
                                                 for n in KNOWN_MODELS]})
            return
        self._not_found(None)

    def do_POST(self):
        raw, body = self._read_json()
        path = self.path.split("?")[0]
        m = MODEL_PATH_RE.match(path)
        if not m:
            self._not_found(body)
            return
        model, method = m.group(2), m.group(3)
        if method == "countTokens":
            n = max(1, len(raw) // 4)
            self._log(body, "other", reply={"totalTokens": n})
            self._send_json(200, {"totalTokens": n})
        elif method == "embedContent":
            self._log(body, "other")
            self._send_json(200, {"embedding": {"values": [0.0] * 8}})
        elif method == "batchEmbedContents":
            n = len(body.get("requests") or [])
            self._log(body, "other")
            self._send_json(200, {"embeddings": [{"values": [0.0] * 8}] * n})
        elif method == "generateContent":
            self._generate(body, model, streaming=False)
        elif method == "streamGenerateContent":
            self._generate(body, model, streaming=True)
        else:
            self._not_found(body)

    def _generate(self, body: dict, model: str, streaming: bool):
        state = self.state
        spec = decide(body, state, streaming)
        parts = parts_of(spec)
        out_tokens = max(1, len(json.dumps(parts)) // 4)
        delay = spec.get("delay_ms", 0) / 1000.0
        self._log(body, spec["classification"], rule=spec.get("rule"),
                  model=model,
                  reply={"parts": parts, "finishReason": "STOP",
                         "delay_ms": spec.get("delay_ms", 0)})
        version = state.script.get("model_version", model)
        resp_id = "standin-%04d" % state.next_id()
        if not streaming:
            time.sleep(delay)
            self._send_json(200, {
                "candidates": [{"content": {"role": "model", "parts": parts},
                                "finishReason": "STOP", "index": 0}],
                "usageMetadata": usage(body, out_tokens),
                "modelVersion": version, "responseId": resp_id})
            return
        self._stream(body, spec, parts, version, resp_id, out_tokens, delay)

    def _stream(self, body, spec, parts, version, resp_id, out_tokens, delay):
        script = self.state.script
        self._start_sse()
        with self._until_client_leaves():
            self.wfile.flush()
            # chunk list: each is a list of parts for one SSE event
            chunks: list[list[dict]] = []
            step = max(1, int(script.get("chunk_chars", 12)))
            for p in parts:
                if "text" in p:
                    txt = p["text"]
                    for j in range(0, max(1, len(txt)), step):
                        chunks.append([{"text": txt[j:j + step]}])
                else:
                    chunks.append([p])
            if delay:
                time.sleep(delay)
            extra = script.get("chunk_delay_ms", 0) / 1000.0
            pu = usage(body, 0)
            for i, cparts in enumerate(chunks):
                last = i == len(chunks) - 1
                if i and extra:
                    time.sleep(extra)
                cand = {"content": {"role": "model", "parts": cparts},
                        "index": 0}
                ev = {"candidates": [cand], "modelVersion": version,
                      "responseId": resp_id}
                if last:
                    cand["finishReason"] = "STOP"
                    ev["usageMetadata"] = usage(body, out_tokens)
                else:
                    ev["usageMetadata"] = {
                        "promptTokenCount": pu["promptTokenCount"],
                        "totalTokenCount": pu["promptTokenCount"]}
                self._sse(None, ev)
            self._chunk(b"")  # terminating zero-length chunk


def main(argv=None) -> int:
    return serve(__doc__, Handler, argv)


if __name__ == "__main__":
    sys.exit(main())
