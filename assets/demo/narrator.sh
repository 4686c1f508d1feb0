# narrator: prints every message it receives, numbered and timestamped, and acknowledges it
# to the sender with "ack N". The injected line doesn't say whether a message went to
# narrator alone or to everyone ("*"), so every message is acked, except acks and pongs
# (answering those could make two agents talk forever) and what the human sends from the TUI.
. "$(dirname "$0")/lib.sh"

rule
echo "  I am $ME, the narrator."
echo "  I print every message I get, and answer it with \"ack N\" to its sender."
echo "  Press c in the TUI to send me a message, or send one to * to reach every agent."
rule

count=0
while IFS= read -r line; do
    if parse_relay "$line"; then
        count=$((count + 1))
        say "#$count from $FROM [$ID]:"
        printf '          %s\n' "$BODY"
        # The human reads this pane: they are no worker to send an ack to.
        case $FROM:$BODY in
            human:* | *:"ack "* | *:"pong "*) ;;
            *) send "$FROM" "ack $count: got \"$BODY\"" ;;
        esac
    elif [ -n "${line%"$CR"}" ]; then
        say "(typed, not a relay message: ${line%"$CR"})"
    fi
done
echo "$ME: end of input after $count messages, bye."
