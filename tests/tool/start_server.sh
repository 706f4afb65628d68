# Sourced by the tool tests. Makes a scratch directory $work, removed on exit with the server
# start_server started, if any, and gives them fail and expect, which count $failures.
work=$(mktemp -d)
server_pid=
cleanup() {
    if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; fi
    rm -rf "$work"
}
trap cleanup EXIT

# Starts hawser-server on a loopback port the kernel picks, with its data in $work/data and its
# log in $work/server.log, and waits for its start-up line (polled for, not slept on). Sets
# server_pid and port; exits the test if the server does not start.
#   start_server path/to/hawser-server [more server options...]
start_server() {
    local server=$1
    shift
    "$server" --data-dir "$work/data" --listen 127.0.0.1:0 --threads 1 "$@" \
        >"$work/server.log" 2>&1 &
    server_pid=$!
    port=
    for _ in $(seq 1 500); do
        port=$(sed -n 's/.*listening on .*(ports \([0-9]*\)).*/\1/p' "$work/server.log")
        [[ -n $port ]] && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.02
    done
    echo "FAIL: the server did not start:"
    cat "$work/server.log"
    exit 1
}

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
expect() {  # expect "what" status expected-text command...: exit status and text in its output
    local what=$1 status=$2 expected=$3; shift 3
    local out rc
    out=$("$@" 2>&1); rc=$?
    [[ $rc == "$status" ]] || fail "$what: exit $rc, want $status: $out"
    [[ "$out" == *"$expected"* ]] || fail "$what: '$out' lacks '$expected'"
}
