# pinger: sends "ping N" to ponger every few seconds and prints whatever comes back.
# Run by brokertui (see assets/demo.toml); PING_EVERY=seconds changes the pace.
. "$(dirname "$0")/lib.sh"

EVERY=${PING_EVERY:-5}
TARGET=${PING_TARGET:-ponger}

rule
echo "  I am $ME, the pinger."
echo "  Every ${EVERY}s I send \"ping N\" to $TARGET and print the pong it sends back."
echo "  Press c in the TUI to send me a message: I print everything I receive."
rule

# The pings come from a background loop; the foreground reads what arrives.
(
    n=1
    sleep 2 # give the others a moment to start
    while :; do
        send "$TARGET" "ping $n"
        n=$((n + 1))
        sleep "$EVERY"
    done
) &
ticker=$!
trap 'kill "$ticker" 2>/dev/null; stty echo 2>/dev/null' EXIT

received=0
while IFS= read -r line; do
    if parse_relay "$line"; then
        received=$((received + 1))
        case $BODY in
            "pong "*) heard "<- $FROM: $BODY   (reply #$received)" ;;
            *) heard "<- $FROM: $BODY" ;;
        esac
    elif [ -n "${line%"$CR"}" ]; then
        say "(typed, not a relay message: ${line%"$CR"})"
    fi
done
echo "$ME: end of input, bye."
