#!/usr/bin/env bash
# An independent client (noise_client.mjs, Node's own crypto, written from docs/protocol.md)
# against a real hawser-server on a loopback port. The server rekeys every two messages and
# sends uncompressed, so the client meets rekey pieces and needs no zstd. It runs twice: over
# TCP, and through a WebSocket upgrade on the same port (Node's own WebSocket client).
#   interop_test.sh path/to/hawser-server
set -uo pipefail
server=$1
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../tool/start_server.sh"
cat >"$work/server.toml" <<TOML
[transport]
rekey_messages = 2
compression = "none"
[websocket]
on_native_ports = true
path = "/hawser"
TOML
key=$("$server" --data-dir "$work/data" --print-public-key) || { echo "FAIL: --print-public-key"; exit 1; }
start_server "$server" -c "$work/server.toml"
if ! node "$here/noise_client.mjs" 127.0.0.1 "$port" "$key"; then
    echo "--- server log"; cat "$work/server.log"; exit 1
fi
# The same, through a WebSocket upgrade on the same port, with Node's own WebSocket client
# (Node 20.10 or later: with an older one, node_websocket.sh says so and this half is skipped).
"$here/../tool/node_websocket.sh" "$here/noise_client.mjs" 127.0.0.1 "$port" "$key" \
    "ws://127.0.0.1:$port/hawser"
case $? in
    0) ;;
    77) echo "the WebSocket half is skipped" ;;
    *) echo "--- server log"; cat "$work/server.log"; exit 1 ;;
esac
