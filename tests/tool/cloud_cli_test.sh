#!/usr/bin/env bash
# The cloud service end to end from the shell: hawser-server --cloud and hawser-cli's register,
# login (session kept in a 0600 file), resumed calls, whoami, logout, the file commands (put,
# ls, get, mv, rm, usage), messages (message, inbox, listen, who), presence (follow), user data
# (data, query);
# the login gate refuses a call without a session; the session and the mailbox survive a
# kill -9.
#   cloud_cli_test.sh path/to/hawser-cli path/to/hawser-server
set -uo pipefail
cli=$1
server=$2
source "$(dirname "$0")/start_server.sh"

key=$("$server" --data-dir "$work/data" --print-public-key) || { echo "FAIL: --print-public-key"; exit 1; }
# Cheap Argon2id: the test is about behaviour, not cost.
cat >"$work/cloud.toml" <<TOML
[cloud]
password_ops = 1
password_memory = 8192
admins = ["bob"]
TOML
# An administrator's account is made on the server, never claimed over the wire.
expect "--add-account" 0 "created bob as user" \
    "$server" --data-dir "$work/data" --config "$work/cloud.toml" --add-account bob <<<"correct horse"
expect "--add-account needs the cloud" 2 "needs the cloud service" \
    "$server" --data-dir "$work/data" --add-account carl <<<"correct horse"
start_server "$server" --config "$work/cloud.toml"
ep="127.0.0.1:$port"
session="$work/home/session"
c() { "$cli" -e "$ep" --key "$key" --session "$session" "$@"; }

expect "the gate refuses a call before login" 1 "error: unauthenticated:" c call hello world
expect "register" 0 "registered ann as user" c register ann <<<"correct horse"
expect "register again" 1 "error: already_exists:" c register ANN <<<"correct horse"
expect "short password" 1 "error: invalid_argument:" c register bob <<<"short"
expect "wrong password" 1 "error: unauthenticated: wrong username or password" c login ann <<<"wrong horse"
expect "unknown user" 1 "error: unauthenticated: wrong username or password" c login nobody <<<"wrong horse"
expect "no password" 2 "no password" c login ann </dev/null
expect "login" 0 "logged in as ann" c login ann <<<"correct horse"
[[ $(stat -c %a "$session") == 600 ]] || fail "the session file is not mode 600"
[[ $(stat -c %a "$work/home") == 700 ]] || fail "the session directory is not mode 700"
expect "whoami" 0 "ann (user " c whoami
expect "a call as ann" 0 "hello, world" c call hello world

# Files: put, ls, get (the copy is the same bytes), mv, rm; names that escape are refused.
head -c 3000000 /dev/urandom >"$work/photo.bin"
expect "put" 0 "" c put "$work/photo.bin" trips/photo.bin
expect "ls" 0 "trips/" c ls
expect "ls trips" 0 "3000000" c ls trips
expect "get" 0 "" c get trips/photo.bin "$work/copy.bin"
cmp -s "$work/photo.bin" "$work/copy.bin" || fail "the downloaded file differs from the upload"
expect "get onto a file that exists" 2 "--force replaces it" c get trips/photo.bin "$work/copy.bin"
echo "not the photo" >"$work/copy.bin"
expect "get --force" 0 "" c get --force trips/photo.bin "$work/copy.bin"
cmp -s "$work/photo.bin" "$work/copy.bin" || fail "the forced download differs from the upload"
expect "a name that escapes" 1 "error: invalid_argument:" c put "$work/photo.bin" ../escape
expect "mv" 0 "" c mv trips/photo.bin trips/renamed.bin
expect "get a moved-away name" 1 "error: not_found:" c get trips/photo.bin "$work/none.bin"
[[ ! -e $work/none.bin ]] || fail "a failed get left a file"
expect "usage" 0 "3000000 of " c usage
expect "rm a directory that is not empty" 1 "not empty" c rm trips
expect "rm -r" 0 "removed 2 entries" c rm -r trips
expect "usage after rm" 0 "0 of " c usage

# Messages: one to a user who is not there waits in the mailbox.
expect "an administrator's name is not for registration" 1 "error: not_allowed:" \
    c register BOB <<<"correct horse"
expect "who" 0 "bob offline" c who bob ann
expect "message bob" 0 "sent as message" c message bob "kept through a crash"
expect "a message to nobody" 1 "error: not_found:" c message nobody "hello?"

# The session and the mailbox survive a crash: accounts, sessions and messages are in the
# server's store, written with sync durability.
kill -9 "$server_pid"; wait "$server_pid" 2>/dev/null; server_pid=
start_server "$server" --config "$work/cloud.toml"
ep="127.0.0.1:$port"
# The file names the old endpoint (a new port): point it at the new one, key and token unchanged.
[[ $(sed -n 2p "$session") == "$key" ]] || fail "the session file does not name the server's key"
token=$(sed -n 3p "$session")
printf '%s\n%s\n%s\n' "$ep" "$key" "$token" >"$session"
expect "whoami after a restart" 0 "ann (user " c whoami
b() { "$cli" -e "$ep" --key "$key" --session "$work/bob-session" "$@"; }
expect "bob logs in" 0 "logged in as bob" b login bob <<<"correct horse"
expect "bob's inbox" 0 "ann: kept through a crash" b inbox
[[ -z $(b inbox) ]] || fail "a read message is still in the inbox"
# listen prints the next message whether it is pushed or found in the mailbox.
timeout 30 "$cli" -e "$ep" --key "$key" --session "$work/bob-session" listen -n 1 \
    >"$work/listen.out" 2>&1 &
listen_pid=$!
expect "message bob again" 0 "sent as message" c message bob "are you there?"
wait "$listen_pid" || fail "listen did not end: $(cat "$work/listen.out")"
grep -q "ann: are you there?" "$work/listen.out" || fail "listen missed it: $(cat "$work/listen.out")"
[[ -z $(b inbox) ]] || fail "listen left its message in the inbox"
# follow prints who is online, then each change: bob's next call comes online and goes.
timeout 30 "$cli" -e "$ep" --key "$key" --session "$session" follow bob nobody -n 2 \
    >"$work/follow.out" 2>&1 &
follow_pid=$!
for _ in $(seq 300); do grep -q "bob offline" "$work/follow.out" && break; sleep 0.1; done
grep -q "nobody: no such user" "$work/follow.out" || fail "follow: $(cat "$work/follow.out")"
expect "bob's call while followed" 0 "bob (user " b whoami
wait "$follow_pid" || fail "follow did not end: $(cat "$work/follow.out")"
grep -q "^bob online [0-9]" "$work/follow.out" && grep -q "^bob offline [0-9]" "$work/follow.out" ||
    fail "follow missed a change: $(cat "$work/follow.out")"

# User data: ann's records, private or public; bob is an admin (admins = ["bob"]).
id=$(c data insert scores '{"level": 12, "_public": true}') || fail "data insert: $id"
secret=$(c data insert scores '{"level": 3, "note": "mine"}') || fail "data insert: $secret"
expect "data get" 0 '"level":12' c data get scores "$id"
expect "data patch" 0 "" c data patch scores "$secret" '{"level": 4}'
expect "query with a filter" 0 '"level":12' c query scores '{"level": {"$gte": 10}}'
[[ $(c query scores --ordered 2>/dev/null | wc -l) == 2 ]] || fail "query: not 2 records"
expect "query's summary" 0 "2 records" c query scores
expect "a reserved field" 1 "error: invalid_argument:" c data insert scores '{"_owner": "bob"}'
expect "bad JSON" 2 "bad JSON argument" c data insert scores '{"level": '
expect "bad filter" 1 "error: invalid_argument:" c query scores '{"level": {"$near": 1}}'
k() { "$cli" -e "$ep" --key "$key" --session "$work/carol-session" "$@"; }
expect "register carol" 0 "registered carol" k register carol <<<"correct horse"
expect "carol logs in" 0 "logged in as carol" k login carol <<<"correct horse"
expect "another user reads the public ones" 0 '"level":12' k query 'scores@ann'
[[ $(k query 'scores@*' 2>/dev/null | wc -l) == 1 ]] || fail "carol sees a private record"
expect "another user writes nothing" 1 "error: not_allowed:" k data insert 'scores@ann' '{}'
expect "admins read everything" 0 '"note":"mine"' b query 'scores@ann'
expect "the cloud's own databases stay closed" 1 "error: not_allowed:" b query /cloud.accounts
expect "data rm" 0 "" c data rm scores "$secret"
expect "data get after rm" 1 "error: not_found:" c data get scores "$secret"

chmod 644 "$session"
expect "a readable session file is refused" 1 "not a private file" c whoami
chmod 600 "$session"
expect "logout" 0 "logged out" c logout
[[ ! -e $session ]] || fail "logout left the session file"
expect "whoami after logout" 1 "not logged in" c whoami
# A token kept from before the logout no longer resumes; a call goes on without it (and is
# refused by the gate), and logout forgets the file.
printf '%s\n%s\n%s\n' "$ep" "$key" "$token" >"$session"; chmod 600 "$session"
expect "a replayed token" 1 "error: unauthenticated:" c whoami
expect "a call with an ended session" 1 "did not resume" c call hello world
expect "logout of an ended session" 0 "already ended" c logout
[[ ! -e $session ]] || fail "logout of an ended session left the file"
# The token is kept for one server: another key at the same endpoint never receives it.
printf '%s\n%s\n%s\n' "$ep" "$(printf '%064d' 0 | tr 0 b)" "$token" >"$session"; chmod 600 "$session"
expect "a session for another server's key" 1 "not logged in to $ep" c whoami
# Existing directories keep their mode; missing ones are made 0700.
mkdir -m 755 "$work/shared"
expect "login into an existing directory" 0 "logged in as ann" \
    "$cli" -e "$ep" --key "$key" --session "$work/shared/deep/session" login ann <<<"correct horse"
[[ $(stat -c %a "$work/shared") == 755 ]] || fail "login changed an existing directory's mode"
[[ $(stat -c %a "$work/shared/deep") == 700 ]] || fail "a new session directory is not 0700"

if ((failures)); then
    echo "$failures failure(s); server log:"
    cat "$work/server.log"
    exit 1
fi
echo "cloud_cli_test: all passed"
