#!/usr/bin/env bash
# The cloud on two hawser-server processes over a nats-server: node "home" keeps the store and
# serves it (serve_store_to), node "edge" uses it (store_endpoint). Accounts are one, a token
# from one node resumes on the other, a message from a user on one node reaches a listener on
# the other and waits in the shared mailbox otherwise, who answers for both nodes, and a follower
# at home is told of a connection coming and going on the edge, and of a member of a room
# joining and leaving there; files are kept at home, and the edge sends hawser-cli there.
#   cloud_cluster_test.sh path/to/hawser-cli path/to/hawser-server
set -uo pipefail
cli=$1
server=$2
source "$(dirname "$0")/start_server.sh"

pids=()
stop_all() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap stop_all EXIT

# Waits for `pattern` in `log` while `pid` lives; prints what the sed expression extracts.
wait_for() {
    local pid=$1 log=$2 expr=$3 out=
    for _ in $(seq 1 500); do
        out=$(sed -n "$expr" "$log" | head -1)
        [[ -n $out ]] && { echo "$out"; return 0; }
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.02
    done
    echo "FAIL: $log:" >&2
    cat "$log" >&2
    return 1
}

nats-server -a 127.0.0.1 -p -1 >"$work/nats.log" 2>&1 &
pids+=($!)
nats_port=$(wait_for "${pids[-1]}" "$work/nats.log" \
    's/.*Listening for client connections on 127.0.0.1:\([0-9]*\).*/\1/p') || exit 1

home_key=$("$server" --data-dir "$work/home" --print-public-key) || { echo "FAIL: home key"; exit 1; }
edge_key=$("$server" --data-dir "$work/edge" --print-public-key) || { echo "FAIL: edge key"; exit 1; }
common="password_ops = 1
password_memory = 8192
secret_key_file = \"$work/cloud.key\""

# Starts a node with its data in $work/NAME and its log in $work/NAME.log; sets node_port. Not
# in a subshell: its pid must reach `pids`, which the exit trap stops.
start_node() {
    local name=$1 config=$2
    "$server" --data-dir "$work/$name" --listen 127.0.0.1:0 --threads 1 --config "$config" \
        --cluster "nats://127.0.0.1:$nats_port" --node-name "$name" >"$work/$name.log" 2>&1 &
    pids+=($!)
    node_port=$(wait_for "${pids[-1]}" "$work/$name.log" \
        's/.*listening on .*(ports \([0-9]*\)).*/\1/p')
}

cat >"$work/home.toml" <<TOML
[cloud]
$common
serve_store_to = ["$edge_key"]
TOML
start_node home "$work/home.toml" || exit 1
home_port=$node_port
cat >"$work/edge.toml" <<TOML
[cloud]
$common
store_endpoint = "127.0.0.1:$home_port"
store_public_key = "$home_key"
TOML
start_node edge "$work/edge.toml" || exit 1
edge_port=$node_port
# What follows needs each node to know the other, which it learns from the other's load report
# (within a report period): a question asks only the nodes known when it is asked.
wait_for "${pids[-1]}" "$work/edge.log" '/node home joined/p' >/dev/null || exit 1
wait_for "${pids[-2]}" "$work/home.log" '/node edge joined/p' >/dev/null || exit 1

h() { "$cli" -e "127.0.0.1:$home_port" --key "$home_key" --session "$work/$1-home" "${@:2}"; }
e() { "$cli" -e "127.0.0.1:$edge_port" --key "$edge_key" --session "$work/$1-edge" "${@:2}"; }

expect "register on the edge" 0 "registered ann" e ann register ann <<<"correct horse"
expect "the name is taken on the home node" 1 "error: already_exists:" \
    h x register ANN <<<"correct horse"
expect "ann logs in at home" 0 "logged in as ann" h ann login ann <<<"correct horse"
# The home node's token resumes on the edge: the same token, the edge's endpoint and key.
printf '%s\n%s\n%s\n' "127.0.0.1:$edge_port" "$edge_key" "$(sed -n 3p "$work/ann-home")" \
    >"$work/ann-edge"
chmod 600 "$work/ann-edge"
expect "resumed on the edge" 0 "ann (user " e ann whoami
expect "register bob at home" 0 "registered bob" h bob register bob <<<"correct horse"
expect "bob logs in on the edge" 0 "logged in as bob" e bob login bob <<<"correct horse"

# A message from home waits in the shared mailbox, read on the edge.
expect "who: bob is away" 0 "bob offline" h ann who bob
expect "message bob" 0 "sent as message" h ann message bob "kept for you"
expect "bob's inbox on the edge" 0 "ann: kept for you" e bob inbox
# bob listens on the edge: who at home sees him, and a message from home is pushed to him.
timeout 30 "$cli" -e "127.0.0.1:$edge_port" --key "$edge_key" --session "$work/bob-edge" \
    listen -n 1 >"$work/listen.out" 2>&1 &
listen_pid=$!
online=
for _ in $(seq 1 250); do
    [[ $(h ann who bob 2>&1) == *"bob online"* ]] && { online=1; break; }
    sleep 0.02
done
[[ -n $online ]] || fail "who at home never saw bob on the edge"
expect "message bob again" 0 "sent as message" h ann message bob "are you there?"
wait "$listen_pid" || fail "listen did not end: $(cat "$work/listen.out")"
grep -q "ann: are you there?" "$work/listen.out" || fail "listen missed it: $(cat "$work/listen.out")"
# Presence across the processes: ann follows bob at home; bob's call on the edge comes online
# there and goes, each change told once, named by the edge. First, listen's connection is gone.
for _ in $(seq 1 250); do [[ $(h ann who bob 2>&1) == *"bob offline"* ]] && break; sleep 0.02; done
timeout 30 "$cli" -e "127.0.0.1:$home_port" --key "$home_key" --session "$work/ann-home" \
    follow bob -n 2 >"$work/follow.out" 2>&1 &
follow_pid=$!
for _ in $(seq 1 500); do grep -q "bob offline" "$work/follow.out" && break; sleep 0.02; done
grep -q "^bob offline$" "$work/follow.out" || fail "follow's first answer: $(cat "$work/follow.out")"
expect "bob's call on the edge while followed" 0 "bob (user " e bob whoami
wait "$follow_pid" || fail "follow did not end: $(cat "$work/follow.out")"
grep -q "^bob online [0-9]*@edge$" "$work/follow.out" &&
    grep -q "^bob offline [0-9]*@edge$" "$work/follow.out" ||
    fail "follow missed a change on the edge: $(cat "$work/follow.out")"
# Rooms across the processes: ann joins the lobby at home and is told of bob joining it on
# the edge and leaving when his connection closes, named by the edge.
timeout 30 "$cli" -e "127.0.0.1:$home_port" --key "$home_key" --session "$work/ann-home" \
    join lobby -n 2 >"$work/join.out" 2>&1 &
join_pid=$!
wait_for "$join_pid" "$work/join.out" '/^lobby ann [0-9]*@home$/p' >/dev/null ||
    fail "ann's join's first answer"
timeout 30 "$cli" -e "127.0.0.1:$edge_port" --key "$edge_key" --session "$work/bob-edge" \
    join lobby >"$work/bob-join.out" 2>&1 &
bob_join_pid=$!
wait_for "$bob_join_pid" "$work/bob-join.out" '/^lobby ann [0-9]*@home$/p' >/dev/null ||
    fail "bob's join on the edge does not list ann at home"
wait_for "$join_pid" "$work/join.out" '/^lobby bob joined [0-9]*@edge$/p' >/dev/null ||
    fail "ann was not told bob joined"
kill "$bob_join_pid"
wait "$bob_join_pid" 2>/dev/null
wait "$join_pid" || fail "join did not end: $(cat "$work/join.out")"
grep -q "^lobby bob left [0-9]*@edge$" "$work/join.out" ||
    fail "ann was not told bob left: $(cat "$work/join.out")"
# Files are kept by the node that serves the store: the edge says where, and hawser-cli takes
# the file commands there, resuming the session.
head -c 100000 /dev/urandom >"$work/f.bin"
expect "put from the edge" 0 "" e bob put "$work/f.bin" f.bin
expect "ls from the edge" 0 "100000" e bob ls
expect "get from the edge" 0 "" e bob get f.bin "$work/copy.bin"
cmp -s "$work/f.bin" "$work/copy.bin" || fail "the file fetched through the edge differs"

if ((failures)); then
    echo "$failures failure(s); logs:"
    tail -n 30 "$work/home.log" "$work/edge.log"
    exit 1
fi
echo "cloud_cluster_test: all passed"
