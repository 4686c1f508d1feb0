"""Shared HTTP scaffolding of the loopback model-API stand-ins
(model_standin.py: Anthropic Messages API, gemini_standin.py: Gemini API).

Dependency free (Python >= 3.11 standard library only). Not run on its own:
each stand-in does ``from standin_http import ...`` after putting its own
directory on ``sys.path``, so it runs from any cwd).

What lives here
---------------
* ``State``: the parsed ``--script`` dict, its ``queue`` of scripted replies
  (``pop_queue``), a thread-safe id counter (``next_id``) and the append-only
  JSON-lines request log (``log``; one ``json.dumps(..., ensure_ascii=False)``
  line per request, nothing written without ``--log``).
* ``BaseHandler``: an HTTP/1.1 ``BaseHTTPRequestHandler`` with the helpers
  both stand-ins use: ``_read_body`` (Content-Length or chunked),
  ``_read_json`` (body parsed as JSON, ``{"_raw": text}`` if it is not),
  ``_headers_subset`` (the logged headers; the API key header reduced to
  ``...<last 4>``, ``authorization`` to ``<scheme> ...<last 4>``),
  ``_send_json``, ``_start_sse`` / ``_chunk`` / ``_sse`` (chunked
  ``text/event-stream``), ``_until_client_leaves`` (a hang-up mid-stream
  just closes the connection), ``_log`` and ``do_HEAD``. A subclass sets what
  differs as class attributes: ``server_version``, ``header_subset``,
  ``api_key_header``, ``classification_field`` (the log key holding the
  request's classification: ``kind`` / ``classification``),
  ``json_content_type``, ``sse_content_type``, and may override
  ``_extra_headers`` (headers added to every response).
* ``main(doc, handler, argv)``: the common command line
  ``--port`` (0 = any free port) ``--host`` (127.0.0.1) ``--log FILE``
  ``--script FILE``; prints ``PORT=<n>`` (flushed) as the first stdout line,
  then serves until interrupted.
* Marker helpers shared by both rule sets: ``RUN_TOOL_RE``
  (``RUN_TOOL:<cmd>`` to end of line), ``SLOW_RE`` / ``slow_ms``
  (``SLOW:<ms>``), ``one_line`` (whitespace runs collapsed to one space) and
  ``State.pop_queued_spec`` (the next scripted ``queue`` reply).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RUN_TOOL_RE = re.compile(r"RUN_TOOL:([^\r\n]+)")
SLOW_RE = re.compile(r"SLOW:(\d+)")


def one_line(s: str) -> str:
    return " ".join(s.split())


def slow_ms(text: str) -> int:
    """The ``<ms>`` of the first ``SLOW:<ms>`` in text, else 0."""
    m = SLOW_RE.search(text)
    return int(m.group(1)) if m else 0


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

    def pop_queued_spec(self, classification_field: str, delay_ms: int):
        """The next scripted ``queue`` entry as a main reply spec (a copy with
        ``delay_ms`` defaulted, ``<classification_field>: "main"`` and
        ``rule: "queue"``), or None when the queue is empty."""
        queued = self.pop_queue()
        if queued is None:
            return None
        spec = dict(queued)
        spec.setdefault("delay_ms", delay_ms)
        spec[classification_field] = "main"
        spec["rule"] = "queue"
        return spec

    def log(self, entry: dict) -> None:
        if not self.log_path:
            return
        line = json.dumps(entry, ensure_ascii=False)
        with self.lock:
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(line + "\n")


class BaseHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "standin/1"           # set by the subclass
    header_subset: tuple[str, ...] = ()    # headers copied into the log
    api_key_header = "x-api-key"           # logged as "...<last 4>"
    classification_field = "kind"          # log key of the classification
    json_content_type = "application/json"
    sse_content_type = "text/event-stream"
    state: State  # set on the class by main()

    def log_message(self, fmt, *args):  # keep stderr quiet
        pass

    # -- request
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

    def _read_json(self) -> tuple[bytes, object]:
        """(raw body, parsed JSON body; {} if empty, {"_raw": text} if not JSON)."""
        raw = self._read_body()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {"_raw": raw.decode("utf-8", "replace")}
        return raw, body

    def _headers_subset(self) -> dict:
        h = {k: self.headers[k] for k in self.header_subset if k in self.headers}
        key = self.headers.get(self.api_key_header)
        if key:
            h[self.api_key_header] = "..." + key[-4:]
        auth = self.headers.get("authorization")
        if auth:
            h["authorization"] = auth.split(" ")[0] + " ..." + auth[-4:]
        return h

    # -- response
    def _extra_headers(self) -> dict:
        """Headers added to every response (after the content headers)."""
        return {}

    def _send_json(self, code: int, obj, extra: dict | None = None):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", self.json_content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in self._extra_headers().items():
            self.send_header(k, v)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _start_sse(self):
        """Send the 200 headers of a chunked event stream."""
        self.send_response(200)
        self.send_header("Content-Type", self.sse_content_type)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for k, v in self._extra_headers().items():
            self.send_header(k, v)
        self.end_headers()

    @contextlib.contextmanager
    def _until_client_leaves(self):
        """Wrap a streamed answer: a client that hangs up mid-stream only
        closes the connection."""
        try:
            yield
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _chunk(self, data: bytes):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _sse(self, event: str | None, obj):
        """One SSE event as one chunk: ``event: <event>\\ndata: <json>\\n\\n``
        (no ``event:`` line if event is None)."""
        head = "event: %s\n" % event if event is not None else ""
        self._chunk(("%sdata: %s\n\n" % (head, json.dumps(obj))).encode())

    # -- log
    def _log(self, body, classification: str, **extra):
        entry = {"t": round(time.time(), 3), "method": self.command,
                 "path": self.path, "headers": self._headers_subset(),
                 "body": body, self.classification_field: classification}
        entry.update(extra)
        self.state.log(entry)

    # -- verbs
    def do_HEAD(self):
        self._log(None, "other")
        self._send_json(200, {})


def main(doc: str, handler: type[BaseHandler], argv=None) -> int:
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--log", default=None, help="append JSON lines here")
    ap.add_argument("--script", default=None, help="JSON script file")
    args = ap.parse_args(argv)
    script = {}
    if args.script:
        with open(args.script, encoding="utf-8") as f:
            script = json.load(f)
    handler.state = State(script, args.log)
    srv = ThreadingHTTPServer((args.host, args.port), handler)
    srv.daemon_threads = True
    print("PORT=%d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()
    return 0
