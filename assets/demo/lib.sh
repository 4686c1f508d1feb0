# Shared helpers for the demo agents; sourced, not run. POSIX sh + coreutils only.
#
# Inside brokertui a worker has BROKERTUI_NAME (its own name) and BROKERTUI_BIN (the brokertui
# binary). Relay messages arrive typed into the terminal as one line followed by Enter:
#     Relay message from FROM [ID]: BODY

ME=${BROKERTUI_NAME:-$(basename "$0" .sh)}
BIN=${BROKERTUI_BIN:-brokertui}
CR=$(printf '\r')

# The terminal would echo each injected line before we print our own version of it: turn echo
# off while we run (only when stdin is a terminal, so piping a file in for testing works).
if [ -t 0 ]; then
    stty -echo 2>/dev/null && trap 'stty echo 2>/dev/null' EXIT
fi
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

now() { date +%H:%M:%S; }

# say TEXT...: one timestamped line of output.
say() { printf '%s  %s\n' "$(now)" "$*"; }

# heard TEXT...: say TEXT about the relay message just parsed, and show its id (dim) below:
# the id on screen is how brokertui sees that the message was taken, since echo is off.
heard() {
    say "$*"
    printf '          \033[2mid %s\033[0m\n' "$ID"
}

# parse_relay LINE: if LINE is a relay message, set FROM, ID and BODY and succeed.
parse_relay() {
    _line=${1%"$CR"}
    case $_line in
        "Relay message from "*" ["*"]: "*) ;;
        *) return 1 ;;
    esac
    _rest=${_line#"Relay message from "}
    FROM=${_rest%%" ["*}          # names cannot contain spaces or '['
    _rest=${_rest#*" ["}
    ID=${_rest%%"]: "*}
    BODY=${_rest#*"]: "}
    return 0
}

# send TO BODY: send a relay message; on failure print why and carry on.
send() {
    if _out=$("$BIN" send "$1" "$2" 2>&1); then
        say "-> $1: $2"
    else
        say "!! send to $1 failed: ${_out:-$BIN exited with an error}"
    fi
}

rule() { printf '%s\n' "------------------------------------------------------------------"; }
