#!/usr/bin/env bash
# Runs node with its WebSocket client (--experimental-websocket, Node 20.10 or later), or exits
# 77, which ctest reports as skipped, when this Node has none: Debian 12's nodejs is 18.
#   node_websocket.sh ARGS...
set -uo pipefail
if ! node --experimental-websocket -e 'if (typeof WebSocket !== "function") process.exit(1)' \
        >/dev/null 2>&1; then
    echo "SKIPPED: $(node --version 2>/dev/null || echo 'no node') has no WebSocket client;" \
         "these tests need Node 20.10 or later (bookworm-backports or NodeSource)"
    exit 77
fi
exec node --experimental-websocket "$@"
