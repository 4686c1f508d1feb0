#!/usr/bin/env python3
"""Check gemini_rules.toml against the recorded screens in screens/gemini/.

    python3 check_gemini_rules.py [-v]

Applies the rules the way brokertui's worker does (src/worker/agent.rs
judge_screen): rows right-trimmed, blank rows dropped, the last `bottom`
non-empty rows joined with "\\n", first matching rule wins. Python's `re`
stands in for Rust's regex crate (the patterns avoid lookaround and
backreferences). Exits 1 if any screen gets a state other than EXPECTED.
"""
import os
import re
import sys
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
SCREENS = os.path.join(HERE, "screens", "gemini")

EXPECTED = {
    "a_idle_empty": "idle",
    "b_working": "working",
    "b2_working_later": "working",
    "c_confirm_dialog": "blocked",
    "d_idle_after_answer": "idle",
    "d2_idle_after_tool": "idle",
    "e_half_typed": "unknown",
    "f_trust_dialog": "blocked",
    "g_auth_dialog": "blocked",
    "h_idle_full_screen": "idle",
    "i_after_reject_esc": "idle",
    "j_working_with_queued": "working",
    "k_after_esc_interrupt": "idle",
    "l_working_full_screen": "working",
    "m_confirm_full_screen": "blocked",
    "n_paste_3_lines_unsubmitted": "unknown",
    "o_big_paste_unsubmitted": "unknown",
    "p_confirm_write_file": "blocked",
    "q_ask_user_dialog": "blocked",
    "r_idle_after_hooked_turn": "idle",
    "s_idle_git_gemini_md": "idle",
    "t_tool_running": "working",
    "u_shell_mode_idle": "idle",
    "v_two_line_input": "unknown",
    "w_working_hook_executing": "working",
}


def judge(rules, text):
    lines = [l.rstrip() for l in text.split("\n")]
    nonempty = [l for l in lines if l.strip()]
    for i, r in enumerate(rules):
        b = r.get("bottom", 0)
        rows = nonempty[-b:] if b else nonempty
        if re.search(r["pattern"], "\n".join(rows)):
            return r["state"], i
    return None, None


def main():
    verbose = "-v" in sys.argv
    with open(os.path.join(HERE, "gemini_rules.toml"), "rb") as f:
        rules = tomllib.load(f)["gemini"]["screen"]
    bad = 0
    for name in sorted(EXPECTED):
        path = os.path.join(SCREENS, name + ".txt")
        with open(path, encoding="utf-8") as f:
            state, idx = judge(rules, f.read())
        ok = state == EXPECTED[name]
        bad += not ok
        if verbose or not ok:
            print("%-30s expected %-8s got %-8s rule %s %s"
                  % (name, EXPECTED[name], state, idx, "" if ok else "MISMATCH"))
    missing = sorted(set(n[:-4] for n in os.listdir(SCREENS)
                         if n.endswith(".txt") and not n.endswith(".ansi.txt")
                         and n != "meta.txt") - set(EXPECTED))
    if missing:
        print("screens without an expectation:", ", ".join(missing))
    print("%d passed, %d failed" % (len(EXPECTED) - bad, bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
