#!/usr/bin/env bash
# hawser-bench end to end at a small scale, so the tool cannot rot: three worker processes,
# a two-node cluster it starts itself over a nats-server, every phase, the raw baseline with
# per-connection keys and sealed records (--raw-sealed); then
# the report is checked (every connection opened, held, pinged and reached by every broadcast,
# slow consumers that read nothing until the others have all, every connection on a personal
# and a group channel getting every publication, a soak's calls and memory drift,
# every connection back after the servers were killed and restarted, ratios and charts
# written). Then against a server it did not start, beside the plain raw baseline; a sealed raw
# server closes a connection that does not begin with a key; and plans the machine cannot run
# are refused with a reason.
#   bench_test.sh path/to/hawser-bench path/to/hawser-server path/to/hawser-cli
set -uo pipefail
bench=$1
server=$2
cli=$3
source "$(dirname "$0")/start_server.sh"

cd "$work"
"$bench" --connections 300 --per-worker 100 --spawn-cluster 2 --server-binary "$server" --raw-sealed \
    --phases connect,hold,ping,call,broadcast,slow,channels,churn,soak,storm --hold 1 \
    --call-seconds 1 --calls-in-flight 2 --broadcasts 5 --slow-fraction 0.1 --channel-rounds 3 \
    --channel-group 7 --channel-rate 2000 --churn-rate 30 --churn-seconds 1 \
    --soak-rate 200 --soak-seconds 5 --timeout-ms 20000 \
    --report "$work/report.json" >"$work/out.txt" 2>"$work/err.txt"
rc=$?
[[ $rc == 0 ]] || { fail "run exited $rc"; cat "$work/out.txt" "$work/err.txt"; }
grep -q "raw, sealed .* ratio" "$work/out.txt" || fail "no summary table: $(cat "$work/out.txt")"

node - "$work/report.json" <<'JS' || failures=$((failures + 1))
const fs = require('fs');
const r = JSON.parse(fs.readFileSync(process.argv[2]));
const bad = [];
const check = (ok, what) => { if (!ok) bad.push(what); };
check(r.plan.workers === 3, `3 workers, got ${r.plan.workers}`);
check(r.plan.raw === true && r.plan.raw_sealed === true, 'the raw baseline, sealed');
for (const mode of ['hawser', 'raw']) {
  const p = r.runs[mode].phases;
  check(p.connect.ok === 300 && p.connect.failed === 0, `${mode} connect: ${JSON.stringify(p.connect)}`);
  check(p.connect.per_second > 0 && p.connect.latency.count === 300, `${mode} connect rate and latency`);
  // No connect failed, so no worker held fewer in flight than --max-opening.
  check(mode === 'raw' ? p.connect.opening_lowest === undefined
                       : p.connect.opening_lowest === r.plan.max_opening && r.plan.max_opening > 0,
        `${mode} connects in flight: ${p.connect.opening_lowest} of ${r.plan.max_opening}`);
  check(p.hold.open === 300 && p.hold.drops === 0, `${mode} hold: ${JSON.stringify(p.hold)}`);
  check(p.ping.ok === 300 && p.ping.failed === 0, `${mode} ping: ${JSON.stringify(p.ping)}`);
  check(p.call.ok > 600 && p.call.failed === 0, `${mode} call: ${JSON.stringify(p.call)}`);
  check(p.broadcast.complete && p.broadcast.deliveries === 1500,
        `${mode} broadcast: ${JSON.stringify(p.broadcast)}`);
  check(p.broadcast.latency.count === 1500, `${mode} broadcast latency samples`);
  // A tenth stop reading (spread over the workers): the others get every message.
  // ... and once they read again they get theirs, before the next phase counts.
  check(p.slow.slow === 30 && p.slow.complete && p.slow.deliveries === 1350 &&
        p.slow.slow_deliveries === 0 && p.slow.slow_caught_up === 150 && p.slow.slow_closed === 0,
        `${mode} slow: ${JSON.stringify(p.slow)}`);
  check(p.slow.server_rss_peak_kib > 0 && p.slow.rss_vs_broadcast > 0, `${mode} slow: memory`);
  // 100 a worker: 100 personal channels and 15 groups of 7 (the last of 2), each worker its
  // own; 3 rounds, paced over about half a second, reach each connection twice.
  const ch = p.channels;
  check(ch.channels === 345 && ch.rounds === 3 && ch.publications === 1035 &&
        ch.subscribe.ok === 600 &&
        ch.subscribe.failed === 0 && ch.deliveries === 1800 && ch.expected === 1800 &&
        ch.latency.count === 1800 && ch.churned === 0 && ch.deliveries_per_second > 0,
        `${mode} channels: ${JSON.stringify(ch)}`);
  check(p.soak.ok >= 500 && p.soak.failed === 0 && typeof p.soak.rss_drift === 'number',
        `${mode} soak: ${JSON.stringify(p.soak)}`);
  // Both servers killed and started again: every connection dropped and came back.
  check(p.storm.target === 300 && p.storm.drops === 300 && p.storm.all_back &&
        p.storm.open === 300 && p.storm.ok === 300 && p.storm.seconds > 0 &&
        p.storm.seconds_to_999 <= p.storm.seconds &&
        // The restart's steps, in order: the old processes gone, the new ones listening,
        // every node seeing the others.
        p.storm.reaped_seconds >= 0 && p.storm.reaped_seconds <= p.storm.listening_seconds &&
        p.storm.listening_seconds <= p.storm.restart_seconds,
        `${mode} storm: ${JSON.stringify(p.storm)}`);
  check(p.churn.ok === 30 && p.churn.failed === 0 && p.churn.open === 300,
        `${mode} churn: ${JSON.stringify(p.churn)}`);
  check(r.runs[mode].server_bytes_per_connection > 0, `${mode} memory per connection`);
}
check(r.runs.hawser.servers.length === 2, 'two hawser nodes');
for (const phase of ['connect', 'ping', 'call', 'broadcast', 'slow', 'channels', 'churn', 'soak',
                     'storm'])
  check(r.ratios[phase] > 0, `ratio for ${phase}`);
check(r.timeline.length > 4, 'a timeline');
for (const chart of r.charts)
  check(fs.readFileSync(chart, 'utf8').startsWith('<svg'), `chart ${chart}`);
check(r.charts.length === 3, 'three charts');
if (bad.length) { console.log('FAIL: report: ' + bad.join('\n  ')); process.exit(1); }
JS

# Channels while connections are replaced: each replacement joins the channels of the one it
# replaces, so most publications still arrive (what a replacement misses while it connects and
# subscribes is lost to it: under ThreadSanitizer and a parallel test run that took up to 12 %;
# replacements that joined nothing would lose most of them). Then one node of two killed: only its
# connections drop, and they come back to it.
"$bench" --connections 60 --spawn-cluster 2 --server-binary "$server" --storm-nodes 1 \
    --phases connect,channels,storm,ping --channel-rounds 300 --channel-churn 100 --raw \
    --work-dir "$work/partial" --report "$work/partial.json" \
    >"$work/partial.txt" 2>&1 || fail "partial storm: $(cat "$work/partial.txt")"
node - "$work/partial.json" <<'JS' || failures=$((failures + 1))
const runs = JSON.parse(require('fs').readFileSync(process.argv[2])).runs;
const p = runs.hawser.phases;
// The plain raw baseline through the same phases: one of its two servers killed, its
// connections back; every publication's slices answered while connections churn.
const raw = runs.raw.phases;
if (!(raw.storm.drops === 30 && raw.storm.all_back && raw.storm.open === 60 &&
      raw.channels.rounds === 300 && raw.channels.churned > 0 && raw.ping.ok === 60)) {
  console.log('FAIL: plain raw, partial storm: ' + JSON.stringify(raw));
  process.exit(1);
}
const ch = p.channels;
if (!(ch.rounds === 300 && ch.expected === 36000 && ch.churned > 0 && ch.failed === 0 &&
      ch.ok === 300 + 3 * ch.churned && ch.deliveries <= ch.expected && ch.delivered > 0.8 &&
      ch.open === 60)) {
  console.log('FAIL: channels with churn: ' + JSON.stringify(ch));
  process.exit(1);
}
// Meanwhile the established connections (the other node's, and those back) took calls.
const est = p.storm.established;
const ok = p.storm.drops === 30 && p.storm.all_back && p.storm.ok === 30 && p.storm.open === 60 &&
  p.ping.ok === 60 && est && est.ok > 0 && est.latency.count === est.ok;
if (!ok) { console.log('FAIL: partial storm: ' + JSON.stringify(p.storm)); process.exit(1); }
JS

# A server it did not start: --endpoint and --key.
key=$("$server" --data-dir "$work/data" --print-public-key 2>/dev/null)
start_server "$server" --bench-commands
"$bench" --endpoint "127.0.0.1:$port" --key "$key" --connections 50 --phases connect,hold,ping,broadcast \
    --hold 2.5 --heartbeat-ms 1000 --broadcasts 3 --raw --work-dir "$work/external" --report "$work/external.json" >"$work/external.txt" 2>&1 ||
    fail "external run: $(cat "$work/external.txt")"
node - "$work/external.json" <<'JS' || failures=$((failures + 1))
const r = JSON.parse(require('fs').readFileSync(process.argv[2]));
const p = r.runs.hawser.phases;
const ok = p.connect.ok === 50 && p.ping.ok === 50 && p.broadcast.deliveries === 150 &&
  r.runs.hawser.endpoints.length === 1 && !('servers' in r.runs.hawser);
if (!ok) { console.log('FAIL: external report: ' + JSON.stringify(r.runs.hawser)); process.exit(1); }
// The plain raw baseline, on raw servers it started.
const raw = r.runs.raw.phases;
// Its clients send heartbeats as Hawser's do (after 1 s of quiet here), answered by its servers.
if (!(r.plan.raw_sealed === false && raw.connect.ok === 50 && raw.connect.failed === 0 &&
      raw.hold.drops === 0 && raw.hold.heartbeats >= 50 && raw.hold.heartbeats_answered > 0 &&
      raw.ping.ok === 50 && raw.broadcast.deliveries === 150 && r.ratios.connect > 0)) {
  console.log('FAIL: external report, raw: ' + JSON.stringify(r.runs.raw));
  process.exit(1);
}
JS

# The benchmark commands refuse what they cannot do, with the reason; the server goes on.
bench_call() { "$cli" --endpoint "127.0.0.1:$port" --key "$key" call "$@" 2>&1; }
for arg in "" "5" "5 16" "0 64" "10001 64" "5 64 1" "5 x" "100 1048576"; do
  out=$(bench_call bench.broadcast "$arg") && fail "bench.broadcast '$arg' was accepted: $out"
  [[ $out == *"invalid_argument"* ]] || fail "bench.broadcast '$arg': $out"
done
for arg in "" "0 10 1 0 5" "0 0 0 0 5 64" "0 100001 1 0 5 64" "0 10 1 0 200001 64" \
    "0 10 0 0 5 64" "0 10 1 0 5 16" "0 10 1 0 5 65537" "0 10 1 0 2000 65536" "0 10 1 0 5 64 7" "0 -1 1 0 5 64"; do
  out=$(bench_call bench.publish "$arg") && fail "bench.publish '$arg' was accepted: $out"
  [[ $out == *"bench.publish takes"* ]] || fail "bench.publish '$arg': $out"
done
out=$(bench_call bench.publish "0 10 1 0 5 64") && fail "bench.publish without a cluster: $out"
[[ $out == *"needs a cluster"* ]] || fail "bench.publish without a cluster: $out"
out=$("$cli" --endpoint "127.0.0.1:$port" --key "$key" call bench.broadcast "2 64" 2>/dev/null) ||
  fail "bench.broadcast after the refusals: exit $?"
[[ $out == 2 ]] || fail "bench.broadcast after the refusals: '$out'"

# A sealed raw server closes a connection that begins with anything but its hello frame (a ping
# frame here), and goes on: a hello is answered with its own (37 bytes), also when it comes in
# two writes; a record that is not authentic after a hello closes the connection.
"$bench" raw-server --listen 127.0.0.1:0 --sealed >"$work/raw.txt" 2>&1 &
raw_pid=$!
for _ in $(seq 100); do grep -q "listening" "$work/raw.txt" && break; sleep 0.1; done
raw_port=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$work/raw.txt")
node - "$raw_port" <<'JS' || failures=$((failures + 1))
const net = require('net');
const port = +process.argv[2];
const frame = (type, body) => {
  const head = Buffer.alloc(5);
  head.writeUInt32LE(body.length + 1);
  head[4] = type;
  return Buffer.concat([head, body]);
};
// Writes the parts one after the other; resolves with what came back and whether the server
// closed (not this side: it ends once it has `want` bytes, or gives up after 10 s).
const talk = (parts, want) => new Promise((resolve) => {
  let got = Buffer.alloc(0), ended = false, timedOut = false;
  const s = net.connect(port, '127.0.0.1', async () => {
    for (const p of parts) {
      s.write(p);
      await new Promise((r) => setTimeout(r, 50));  // most likely apart: not relied on
    }
  });
  s.on('data', (d) => {
    got = Buffer.concat([got, d]);
    if (want && got.length >= want) { ended = true; s.end(); }
  });
  const timer = setTimeout(() => { timedOut = true; s.destroy(); }, 10000);
  s.on('close', () => { clearTimeout(timer); resolve({ got, closedByServer: !ended && !timedOut }); });
  s.on('error', () => {});
});
const isHello = (b) => b.length === 37 && b.readUInt32LE(0) === 33 && b[4] === 7;
(async () => {
  const bad = [];
  const refused = await talk([frame(1, Buffer.from('01234567'))], 0);
  if (!(refused.got.length === 0 && refused.closedByServer)) bad.push(`ping first: ${JSON.stringify(refused)}`);
  // An ephemeral key of the client's: any 32 bytes that are not a low-order point.
  const hello = frame(7, require('crypto').randomBytes(32));
  const split = await talk([hello.subarray(0, 10), hello.subarray(10)], 37);
  if (!isHello(split.got)) bad.push(`split hello: ${split.got.toString('hex')}`);
  const record = Buffer.alloc(4 + 16 + 9);  // a record of 9 bytes, sealed with no key
  record.writeUInt32LE(25);
  const forged = await talk([Buffer.concat([frame(7, require('crypto').randomBytes(32)), record])], 0);
  // Closed at once: its answer may not have been written yet.
  if (!((forged.got.length === 0 || isHello(forged.got)) && forged.closedByServer)) bad.push(`forged record: ${JSON.stringify(forged)}`);
  if (bad.length) { console.log('FAIL: sealed raw server: ' + bad.join('; ')); process.exit(1); }
})();
JS
kill "$raw_pid" 2>/dev/null; wait "$raw_pid" 2>/dev/null

# Plans this machine cannot run: exit 2 and a reason, before any process starts.
out=$("$bench" --connections 100000 --spawn-cluster 1 --server-binary "$server" 2>&1); rc=$?
[[ $rc == 2 && $out == *"--spawn-cluster"* ]] || fail "too few servers: exit $rc: $out"
for nodes in 0 1001; do
  out=$("$bench" --spawn-cluster "$nodes" 2>&1); rc=$?
  [[ $rc == 2 && $out == *"--spawn-cluster must be 1 to 1000"* ]] || fail "spawn-cluster $nodes: exit $rc: $out"
done
out=$("$bench" --calls-in-flight 1025 2>&1); rc=$?
[[ $rc == 2 && $out == *"--calls-in-flight"* ]] || fail "calls in flight 1025: exit $rc: $out"
out=$("$bench" --per-worker 0 2>&1); rc=$?
[[ $rc == 2 && $out == *"--per-worker"* ]] || fail "per-worker 0: exit $rc: $out"
out=$("$bench" --endpoint 127.0.0.1:1 2>&1); rc=$?
[[ $rc == 2 && $out == *"--key"* ]] || fail "endpoint without key: exit $rc: $out"
out=$("$bench" --endpoint "127.0.0.1:$port" --key "$key" --connections 5 --phases connect,storm \
    --report "$work/storm.json" 2>&1); rc=$?
[[ $rc == 2 && $out == *"servers it started"* ]] || fail "storm on servers it did not start: exit $rc: $out"
out=$("$bench" --spawn-cluster 2 --storm-nodes 3 2>&1); rc=$?
[[ $rc == 2 && $out == *"--storm-nodes"* ]] || fail "storm nodes past the cluster: exit $rc: $out"
out=$("$bench" --endpoint "127.0.0.1:$port" --key "$key" --phases connect,channels 2>&1); rc=$?
[[ $rc == 2 && $out == *"--cluster"* ]] || fail "channels on a server alone: exit $rc: $out"
out=$("$bench" --phases connect,channels,channels 2>&1); rc=$?
[[ $rc == 2 && $out == *"once"* ]] || fail "channels twice: exit $rc: $out"
out=$("$bench" --channel-bytes 16 2>&1); rc=$?
[[ $rc == 2 && $out == *"--channel-bytes"* ]] || fail "channel bytes 16: exit $rc: $out"
out=$("$bench" --slow-fraction 1 2>&1); rc=$?
[[ $rc == 2 && $out == *"--slow-fraction"* ]] || fail "slow fraction 1: exit $rc: $out"
for opening in 0 1000001; do
  out=$("$bench" --max-opening "$opening" 2>&1); rc=$?
  [[ $rc == 2 && $out == *"--max-opening must be 1 to 1000000"* ]] || fail "max opening $opening: exit $rc: $out"
done
out=$("$bench" --soak-rate 0 2>&1); rc=$?
[[ $rc == 2 && $out == *"--soak-rate"* ]] || fail "soak rate 0: exit $rc: $out"
out=$("$bench" --connections 10 --phases connect,dance --server-binary "$server" 2>&1); rc=$?
[[ $rc == 2 && $out == *"unknown phase 'dance'"* ]] || fail "unknown phase: exit $rc: $out"

((failures == 0)) && echo "bench tool: all checks passed"
exit $((failures > 0))
