#!/usr/bin/env bash
# hawser-cli end to end against a real hawser-server on a loopback port: console and DataFrame
# calls, key pinning, typed errors, usage errors, exit codes. Also: a bad --listen is refused
# before the server creates its data directory, and a second server on a port in use fails.
#   cli_test.sh path/to/hawser-cli path/to/hawser-server
set -uo pipefail
cli=$1
server=$2
source "$(dirname "$0")/start_server.sh"

# The server's key first (this creates it), then the server on a port the kernel picks; the
# port is read from its start-up line, polled for rather than waited for.
key=$("$server" --data-dir "$work/data" --print-public-key) || { echo "FAIL: --print-public-key"; exit 1; }
# WebSocket upgrades on the native port too: every native call below goes through the sniffing.
cat >"$work/server.toml" <<TOML
[websocket]
on_native_ports = true
path = "/ws"
TOML
start_server "$server" -c "$work/server.toml"
ep="127.0.0.1:$port"

expect "--help" 0 "call-dataframe" "$cli" --help
expect "--help shows examples" 0 "Examples" "$cli" --help
expect "console call" 0 "hello, world" "$cli" -e "$ep" --key "$key" call hello world
got=$("$cli" -e "$ep" --key "$key" call-dataframe sum '[1, 2, 39]' 2>&1)
[[ $got == "[42]" ]] || fail "DataFrame call: '$got', want [42]"
got=$("$cli" -e "$ep" --key "$key" call-dataframe echo.frame '[{"name":"ada","tags":["x"]}, -3, 2.5, null, true, "s"]' 2>&1)
want='[{"name":"ada","tags":["x"]},-3,2.5,null,true,"s"]'
[[ $got == "$want" ]] || fail "DataFrame echo: '$got', want '$want'"
got=$("$cli" -e "$ep" --key "$key" call-dataframe echo.frame '{"one":1}' 2>&1)
[[ $got == '[{"one":1}]' ]] || fail "a single JSON value is a frame of one: '$got'"
printf '%s\n' "$key" >"$work/key.txt"
expect "--key-file" 0 "hello, file" "$cli" -e "$ep" --key-file "$work/key.txt" call hello file
expect "options after the subcommand" 0 "hello, late" "$cli" call hello late -e "$ep" --key "$key"
expect "send" 0 "" "$cli" -e "$ep" --key "$key" send log "from cli_test"
expect "through a WebSocket upgrade" 0 "hello, ws" "$cli" -e "$ep" --key "$key" --websocket /ws call hello ws
expect "a WebSocket path the server does not serve" 1 "404 Not Found" "$cli" -e "$ep" --key "$key" --websocket /nowhere call hello ws
expect "trust on first use prints the key" 0 "$key" "$cli" -e "$ep" --trust-first-use call hello tofu

wrong=$(printf '%064d' 0 | tr 0 a)
expect "wrong key" 1 "error: not_connected: handshake failed" "$cli" -e "$ep" --key "$wrong" call hello x
expect "unknown command" 1 "error: unknown_command:" "$cli" -e "$ep" --key "$key" call no.such.command
expect "console call to a DataFrame command" 1 "error: wrong_kind:" "$cli" -e "$ep" --key "$key" call sum
expect "handler error" 1 "error: " "$cli" -e "$ep" --key "$key" call-dataframe sum '["not a number"]'
expect "bad JSON" 2 "bad JSON argument" "$cli" -e "$ep" --key "$key" call-dataframe sum '[1, 2'
expect "too deep JSON" 2 "deeper than 32" "$cli" -e "$ep" --key "$key" call-dataframe sum "$(printf '[%.0s' $(seq 40))$(printf ']%.0s' $(seq 40))"
expect "no key" 2 "--trust-first-use" "$cli" -e "$ep" call hello x
expect "bad key file" 2 "64 hex digits" "$cli" -e "$ep" --key-file "$work/server.log" call hello x
expect "no subcommand" 2 "" "$cli" -e "$ep" --key "$key"
expect "unknown option" 2 "" "$cli" --bogus call hello
expect "nobody listening" 1 "error: " "$cli" -e 127.0.0.1:1 --key "$key" --timeout 5 call hello x

# hawser-server refuses a second server on the port in use, and names the option to share it.
expect "second server on the port" 1 "reuse-port" "$server" --data-dir "$work/data" --listen "$ep"
# A bad listen address is refused before the data directory (and its key) is created.
expect "bad listen address" 2 "nonsense" "$server" --data-dir "$work/fresh" --listen nonsense
[[ ! -e $work/fresh ]] || fail "a bad --listen created the data directory"

if ((failures)); then echo "$failures failure(s)"; exit 1; fi
echo "all hawser-cli checks passed"
