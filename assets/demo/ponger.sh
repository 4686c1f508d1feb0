# ponger: answers every "ping N" with "pong N" to whoever sent it. Never answers anything
# else (in particular not a pong), so two agents can't bounce messages forever.
. "$(dirname "$0")/lib.sh"

rule
echo "  I am $ME, the ponger."
echo "  I answer every \"ping N\" with \"pong N\" to its sender, and ignore the rest."
echo "  Press c in the TUI and send me \"ping 42\" to get a pong back."
rule

answered=0
while IFS= read -r line; do
    if parse_relay "$line"; then
        case $BODY in
            "ping "*)
                answered=$((answered + 1))
                heard "<- $FROM: $BODY"
                send "$FROM" "pong ${BODY#"ping "}"
                ;;
            *) heard "<- $FROM: $BODY   (not a ping: no answer)" ;;
        esac
    elif [ -n "${line%"$CR"}" ]; then
        say "(typed, not a relay message: ${line%"$CR"})"
    fi
done
echo "$ME: end of input after answering $answered pings, bye."
