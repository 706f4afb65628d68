#!/usr/bin/env bash
# An independent client (noise_client.mjs, Node's own crypto, written from docs/protocol.md)
# against a real hawser-server on a loopback port. The server rekeys every two messages and
# sends uncompressed, so the client meets rekey pieces and needs no zstd.
#   interop_test.sh path/to/hawser-server
set -uo pipefail
server=$1
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
server_pid=
cleanup() {
    if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; fi
    rm -rf "$work"
}
trap cleanup EXIT
cat >"$work/server.toml" <<TOML
[transport]
rekey_messages = 2
compression = "none"
TOML
key=$("$server" --data-dir "$work/data" --print-public-key) || { echo "FAIL: --print-public-key"; exit 1; }
"$server" -c "$work/server.toml" --data-dir "$work/data" --listen 127.0.0.1:0 --threads 1 \
    >"$work/server.log" 2>&1 &
server_pid=$!
port=
for _ in $(seq 1 500); do
    port=$(sed -n 's/.*listening on .*(ports \([0-9]*\)).*/\1/p' "$work/server.log")
    [[ -n $port ]] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.02
done
[[ -n $port ]] || { echo "FAIL: the server did not start:"; cat "$work/server.log"; exit 1; }
if ! node "$here/noise_client.mjs" 127.0.0.1 "$port" "$key"; then
    echo "--- server log"; cat "$work/server.log"; exit 1
fi
