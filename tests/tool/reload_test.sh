#!/usr/bin/env bash
# hawser-server reloads its limits on SIGHUP: a deny rule in the file refuses hawser-cli, the
# file without it (and a SIGHUP) lets it in, and a broken file keeps the running limits. A bad
# configuration exits 2 before anything touches the disk.
#   reload_test.sh path/to/hawser-cli path/to/hawser-server
set -uo pipefail
cli=$1 server=$2
here=$(cd "$(dirname "$0")" && pwd)
source "$here/start_server.sh"

config="$work/server.toml"
printf '[admission]\ndeny = ["127.0.0.0/8"]\n' >"$config"
key=$("$server" --data-dir "$work/data" --print-public-key) || { echo "FAIL: no key"; exit 1; }
start_server "$server" -c "$config"
call() { "$cli" -e "127.0.0.1:$port" --key "$key" --timeout 5 call hello reload; }

# Waits for the server's log to have one more line matching $1 than it had (polled, bounded).
wait_log() {
    local pattern=$1 before=$2
    for _ in $(seq 1 500); do
        (( $(grep -c "$pattern" "$work/server.log") > before )) && return 0
        sleep 0.02
    done
    fail "no '$pattern' in the server log"; cat "$work/server.log"; return 1
}

expect "denied by the file" 1 "error: " call
grep -q "denied" "$work/server.log" || fail "the server did not log a denial"
printf '[admission]\ndeny = []\n' >"$config"
kill -HUP "$server_pid"
wait_log "limits reloaded" 0
expect "allowed after the reload" 0 "hello, reload" call

printf '[admission]\ndeny = ["not a range"]\n' >"$config"
kill -HUP "$server_pid"
wait_log "kept the running limits" 0
expect "still allowed after a bad reload" 0 "hello, reload" call
kill -0 "$server_pid" || fail "the server died"

# A bad configuration exits 2 before anything touches the disk: a bad flag, and a setting only
# the server's start used to refuse (after it had made its data directory).
expect "a bad flag" 2 "no-such-flag" "$server" --no-such-flag
printf '[websocket]\nlisten = ["127.0.0.1:0"]\npath = "no-slash"\n' >"$work/bad.toml"
expect "a bad WebSocket path" 2 "path" "$server" -c "$work/bad.toml" --data-dir "$work/untouched"
[[ ! -e $work/untouched ]] || fail "a refused configuration made its data directory"
if ((failures)); then echo "$failures failure(s)"; exit 1; fi
