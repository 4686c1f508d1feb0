#!/usr/bin/env python3
"""Create a throw-away HOME in which the real Claude Code CLI (tested with
2.1.197) starts straight into its input box: no theme picker, no login /
connectivity check, no "Do you trust the files in this folder?", no
"Detected a custom API key" question, no release notes.

    python3 claude_home.py --home /tmp/h --cwd /path/to/project \
        --api-key sk-ant-test-xxxxxxxxxxxxxxxxxxxxxxxx [--port 4567] [--print-env]

or from Python:  make_home(home, cwd, api_key) -> dict of env vars.

Keys written to $HOME/.claude.json and why. Verified by starting 2.1.197 with
the full set minus one key (tests/agents/NOTES.md): only three are REQUIRED.

* ``hasCompletedOnboarding: true`` - REQUIRED. Without it Claude Code runs the
  first-run flow ("Welcome to Claude Code" splash, theme picker) including a
  connectivity check against api.anthropic.com (NOT ANTHROPIC_BASE_URL) that
  fails offline with "Unable to connect to Anthropic services ... ENOTFOUND".
* ``customApiKeyResponses.approved: [<last 20 chars of the key>]`` - REQUIRED
  when ANTHROPIC_API_KEY is set; else a "Detected a custom API key in your
  environment ... Do you want to use this API key?" dialog whose default is
  "2. No (recommended)".
* ``projects[<dir>].hasTrustDialogAccepted: true`` - REQUIRED, else the
  "Accessing workspace: ... Is this a project you created or one you trust?"
  dialog. <dir> is an absolute real path; trust given to an ANCESTOR of the
  working directory is inherited, so trusting a workspace root once is enough.
* optional (dropping any of them still starts straight into the prompt):
  ``lastOnboardingVersion``, ``lastReleaseNotesSeen``, ``theme``,
  ``hasCompletedProjectOnboarding``, ``projectOnboardingSeenCount``,
  ``shiftEnterKeyBindingInstalled``, ``hasIdeOnboardingBeenShown``,
  ``hasSeenTasksHint``, ``autoUpdates: false``, ``bypassPermissionsModeAccepted``.
  Kept to silence hints in later versions.

Claude Code rewrites this file while running (adds numStartups, machineID,
firstStartTime, per-project stats...), so create a fresh HOME per test.

Env returned by :func:`agent_env` (also see NOTES.md): ANTHROPIC_BASE_URL,
ANTHROPIC_API_KEY, DISABLE_AUTOUPDATER=1,
CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1, DISABLE_TELEMETRY=1,
DISABLE_ERROR_REPORTING=1. With 2.1.197 the session also works without the
four DISABLE_* variables (no extra requests were seen on the base URL); they
are set to keep it from trying other hosts.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

CLAUDE_VERSION = "2.1.197"


def make_home(home: str, cwd: str, api_key: str,
              version: str = CLAUDE_VERSION, extra: dict | None = None) -> str:
    """Write $home/.claude.json (and $home/.claude/) for a session in cwd."""
    home = os.path.abspath(home)
    cwd = os.path.realpath(cwd)
    os.makedirs(os.path.join(home, ".claude"), exist_ok=True)
    cfg = {
        "numStartups": 1,
        "installMethod": "global",
        "autoUpdates": False,
        "theme": "dark",
        "hasCompletedOnboarding": True,
        "lastOnboardingVersion": version,
        "lastReleaseNotesSeen": version,
        "shiftEnterKeyBindingInstalled": True,
        "hasIdeOnboardingBeenShown": {"vscode": True},
        "hasSeenTasksHint": True,
        "bypassPermissionsModeAccepted": False,
        "customApiKeyResponses": {"approved": [api_key[-20:]], "rejected": []},
        "projects": {
            cwd: {
                "allowedTools": [],
                "hasTrustDialogAccepted": True,
                "hasCompletedProjectOnboarding": True,
                "projectOnboardingSeenCount": 1,
                "hasClaudeMdExternalIncludesApproved": False,
                "hasClaudeMdExternalIncludesWarningShown": False,
            }
        },
    }
    if extra:
        cfg.update(extra)
    path = os.path.join(home, ".claude.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=2)
    os.chmod(path, 0o600)
    return path


def agent_env(home: str, api_key: str, port: int | None = None,
              base: dict | None = None) -> dict:
    """Environment for `claude` against the loopback stand-in."""
    env = dict(base if base is not None else {})
    env.setdefault("PATH", os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"))
    env.setdefault("TERM", "xterm-256color")
    env["HOME"] = os.path.abspath(home)
    env["ANTHROPIC_API_KEY"] = api_key
    if port is not None:
        env["ANTHROPIC_BASE_URL"] = "http://127.0.0.1:%d" % port
    env.update({
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
    })
    return env


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="make a first-run-free HOME for claude")
    ap.add_argument("--home", required=True)
    ap.add_argument("--cwd", required=True)
    ap.add_argument("--api-key", default="sk-ant-test-0123456789abcdefghijklmnop")
    ap.add_argument("--port", type=int, default=None)
    ap.add_argument("--print-env", action="store_true",
                    help="print `K=V` lines (shell-quoted) for env(1)")
    a = ap.parse_args(argv)
    make_home(a.home, a.cwd, a.api_key)
    if a.print_env:
        for k, v in agent_env(a.home, a.api_key, a.port, base={}).items():
            if k in ("PATH",):
                continue
            print("%s=%s" % (k, shlex.quote(v)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
