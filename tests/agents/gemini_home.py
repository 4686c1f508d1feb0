#!/usr/bin/env python3
"""Create a throw-away HOME in which the real Gemini CLI (tested with
@google/gemini-cli 0.61.0) starts straight into its input box: no auth
dialog, no "Do you trust the files in this folder?", no update check or
auto-update, no usage statistics / telemetry, no terminal-compatibility
warning. (0.61.0 has no first-run theme picker.)

    python3 gemini_home.py --home /tmp/h [--cwd /path/to/project] \
        [--port 4567] [--api-key test-key] [--relaunch] [--print-env]

or from Python:  make_home(home) ; agent_env(home, port, api_key) -> dict.

Files written
-------------
``$HOME/.gemini/settings.json`` (user settings). Each key, and what removing
it does (verified one by one with 0.61.0, tests/agents/NOTES.md):

* ``security.auth.selectedType = "gemini-api-key"`` - REQUIRED. Without it
  the CLI opens the "Get started / How would you like to authenticate for
  this project?" dialog (Sign in with Google / Use Gemini API Key / Vertex
  AI), even with GEMINI_API_KEY set. With it, GEMINI_API_KEY (any string,
  sent as ``x-goog-api-key``) and GOOGLE_GEMINI_BASE_URL are used.
* ``security.folderTrust.enabled = false`` - folder-trust feature off, so no
  "Do you trust the files in this folder?" dialog and no "Skipping project
  agents due to untrusted folder" notice. Equivalent alternatives: env
  ``GEMINI_CLI_TRUST_WORKSPACE=true`` (also set by agent_env) or a
  ``~/.gemini/trustedFolders.json`` ``{"<abs dir>": "TRUST_FOLDER"}``
  (written too when --cwd is given). One of the three is REQUIRED.
* ``general.enableAutoUpdate = false`` / ``general.enableAutoUpdateNotification
  = false`` - no "update available" banner and no self-``npm install -g``
  when a newer release is published (the npm registry IS reachable here;
  0.61.0 was the latest when this was recorded, so no banner either way).
* ``privacy.usageStatisticsEnabled = false`` - no Clearcut usage-statistics
  uploads. ``telemetry.enabled = false`` - no OpenTelemetry export (off by
  default; explicit). Measured with ``strace -f -e connect`` over a one-turn
  session: with ONLY ``security.auth.selectedType`` the CLI made DNS queries
  and 3 HTTPS connects to a non-loopback address (failing offline); with the
  settings written here it connected to nothing but the stand-in. Which of
  these keys stops it was not bisected (to avoid more outbound attempts).
* ``ui.showCompatibilityWarnings = false`` - hides "Warning: True color
  (24-bit) support not detected. Using a terminal with true color enabled
  will result in a better visual experience." (tmux without COLORTERM;
  counted in ~/.gemini/state.json ``startupWarningCounts``).
* ``ide.enabled = false`` / ``ide.hasSeenNudge = true`` - no IDE-companion
  nudge (never seen here; it needs a VS Code-like terminal; set defensively).
* ``ui.theme = "Default"`` - fixed colours (otherwise chosen from the
  terminal's background colour, which the CLI queries with OSC 11; 0.61.0
  shows no theme picker either way).

Everything else is left at its default on purpose so the screens are the ones
a user with a default config sees (banner, tips, footer, dynamic window
title ``◇  Ready (<dir>)`` / ``✦  Working… (<dir>)`` / ``✋  Action Required
(<dir>)``).

The CLI writes ``~/.gemini/{installation_id,projects.json,state.json,
history/,tmp/<project>/chats/...}`` while running; use a fresh HOME per test.

Env returned by :func:`agent_env`:

* ``HOME`` - the throw-away home.
* ``GEMINI_API_KEY`` - any string; sent as ``x-goog-api-key``.
* ``GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:<port>`` (if a port is given) -
  no path; the CLI calls ``$BASE/v1beta/models/<m>:...``. http is accepted
  for localhost / 127.0.0.1 / [::1] only.
* ``GEMINI_CLI_TRUST_WORKSPACE=true`` - trust for this run (belt and braces
  with ``security.folderTrust.enabled = false``).
* ``GEMINI_CLI_NO_RELAUNCH=true`` (unless ``relaunch=True`` /
  ``--relaunch``) - by default ``gemini`` re-executes itself as a child node
  process with ``--max-old-space-size=<half the RAM>``; skipping that halves
  start-up (2.4-3.1 s instead of 4.4-4.9 s to the input box here) and makes
  the CLI exit when its PTY closes (the relaunching parent catches SIGHUP,
  so WITH the relaunch both processes survive a closed PTY; see NOTES.md).
  Screens look the same either way.
* ``TERM=xterm-256color``.

``GEMINI_CLI_HOME=<dir>`` would relocate ~/.gemini without changing HOME (not
needed when HOME is private).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

GEMINI_VERSION = "0.61.0"
DEFAULT_KEY = "test-gemini-key-0123456789"


def settings(extra: dict | None = None) -> dict:
    s = {
        "security": {
            "auth": {"selectedType": "gemini-api-key"},
            "folderTrust": {"enabled": False},
        },
        "general": {
            "enableAutoUpdate": False,
            "enableAutoUpdateNotification": False,
        },
        "privacy": {"usageStatisticsEnabled": False},
        "telemetry": {"enabled": False},
        "ui": {
            "theme": "Default",
            "showCompatibilityWarnings": False,
        },
        "ide": {"enabled": False, "hasSeenNudge": True},
    }
    for k, v in (extra or {}).items():
        if isinstance(v, dict) and isinstance(s.get(k), dict):
            s[k].update(v)
        else:
            s[k] = v
    return s


def make_home(home: str, cwd: str | None = None,
              extra: dict | None = None) -> str:
    """Write $home/.gemini/settings.json (+ trustedFolders.json for cwd)."""
    home = os.path.abspath(home)
    gdir = os.path.join(home, ".gemini")
    os.makedirs(gdir, exist_ok=True)
    with open(os.path.join(gdir, "settings.json"), "w", encoding="utf-8") as f:
        json.dump(settings(extra), f, indent=2)
        f.write("\n")
    if cwd:
        with open(os.path.join(gdir, "trustedFolders.json"), "w",
                  encoding="utf-8") as f:
            json.dump({os.path.realpath(cwd): "TRUST_FOLDER"}, f, indent=2)
            f.write("\n")
    return home


def agent_env(home: str, port: int | None = None,
              api_key: str = DEFAULT_KEY, relaunch: bool = False) -> dict:
    env = {
        "HOME": os.path.abspath(home),
        "TERM": "xterm-256color",
        "GEMINI_API_KEY": api_key,
        "GEMINI_CLI_TRUST_WORKSPACE": "true",
    }
    if not relaunch:
        env["GEMINI_CLI_NO_RELAUNCH"] = "true"
    if port:
        env["GOOGLE_GEMINI_BASE_URL"] = "http://127.0.0.1:%d" % port
    return env


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--home", required=True)
    ap.add_argument("--cwd", default=None,
                    help="also write trustedFolders.json for this dir")
    ap.add_argument("--port", type=int, default=None)
    ap.add_argument("--api-key", default=DEFAULT_KEY)
    ap.add_argument("--relaunch", action="store_true",
                    help="do not set GEMINI_CLI_NO_RELAUNCH (the CLI's default)")
    ap.add_argument("--print-env", action="store_true",
                    help="print `export K=V` lines instead of `K=V`")
    args = ap.parse_args(argv)
    make_home(args.home, args.cwd)
    for k, v in agent_env(args.home, args.port, args.api_key,
                          args.relaunch).items():
        print(("export %s=%s" if args.print_env else "%s=%s")
              % (k, shlex.quote(v)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
