// The live dashboard: scrapes /metrics every interval (?interval=ms, default 1000), keeps five
// minutes of history, and draws it: connections and rates over time (uPlot), closes by
// reason, the slowest commands and the cluster's nodes. window.dashboard exposes what it read,
// for tests and the curious.
'use strict';

const params = new URLSearchParams(location.search);
const interval = Math.min(60_000, Math.max(100, Number(params.get('interval')) || 1000));
const keep = Math.ceil(300_000 / interval);

// Prometheus text: `name{label="value",...} number` lines; comments skipped.
function parseMetrics(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/);
    if (!m) continue;
    const labels = {};
    const labelText = m[2] ?? '';
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g;
    for (let l; (l = re.exec(labelText));)
      labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

const sum = (samples, name, match = () => true) =>
  samples.filter((s) => s.name === name && match(s.labels)).reduce((a, s) => a + s.value, 0);

// What one scrape says, in the shape the page draws.
function summarise(samples) {
  const commands = new Map();
  const command = (name) => {
    if (!commands.has(name)) commands.set(name, { name, calls: 0, errors: 0, sum: 0, count: 0, buckets: [] });
    return commands.get(name);
  };
  const nodes = new Map();
  const node = (name) => {
    if (!nodes.has(name)) nodes.set(name, { name });
    return nodes.get(name);
  };
  const closes = [];
  for (const s of samples) {
    const c = s.labels.command;
    if (s.name === 'hawser_command_calls_total') command(c).calls = s.value;
    else if (s.name === 'hawser_command_errors_total') command(c).errors = s.value;
    else if (s.name === 'hawser_command_duration_seconds_sum') command(c).sum = s.value;
    else if (s.name === 'hawser_command_duration_seconds_count') command(c).count = s.value;
    else if (s.name === 'hawser_command_duration_seconds_bucket')
      command(c).buckets.push([s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), s.value]);
    else if (s.name === 'hawser_connections_closed_total' && s.value > 0)
      closes.push({ reason: s.labels.reason, count: s.value });
    else if (s.name.startsWith('hawser_cluster_node_'))
      node(s.labels.node)[s.name.slice('hawser_cluster_node_'.length)] = s.value;
  }
  return {
    connections: sum(samples, 'hawser_connections'),
    calls: sum(samples, 'hawser_command_calls_total'),
    handshakes: sum(samples, 'hawser_handshakes_total'),
    closed: sum(samples, 'hawser_connections_closed_total'),
    sendQueue: sum(samples, 'hawser_send_queue_bytes'),
    bytesIn: sum(samples, 'hawser_bytes_total', (l) => l.direction === 'in'),
    bytesOut: sum(samples, 'hawser_bytes_total', (l) => l.direction === 'out'),
    commands: [...commands.values()],
    closes: closes.sort((a, b) => b.count - a.count),
    nodes: [...nodes.values()],
  };
}

// The upper bound of the bucket holding the 99th percentile: "p99 at most this".
function p99(command) {
  const target = 0.99 * command.count;
  for (const [le, count] of command.buckets.sort((a, b) => a[0] - b[0])) if (count >= target && count > 0) return le;
  return NaN;
}

const number = (v) => (Number.isFinite(v) ? v.toLocaleString('en') : '–');
// NaN: nothing timed yet (a delayed reply in flight); Infinity: past the last bucket.
const seconds = (v) => (Number.isNaN(v) ? '–' : v === Infinity ? '> 5 s'
                        : v >= 1 ? `${v.toFixed(2)} s` : `${(v * 1000).toFixed(v < 0.001 ? 3 : 1)} ms`);
const bytes = (v) => (v >= 1 << 20 ? `${(v / (1 << 20)).toFixed(1)} MiB` : v >= 1024 ? `${(v / 1024).toFixed(1)} KiB` : `${v} B`);

function fillTable(id, rows) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren(...rows.map((cells) => {
    const tr = document.createElement('tr');
    for (const cell of cells) {
      const td = document.createElement('td');
      if (typeof cell === 'object') {
        td.className = 'bar';
        const bar = document.createElement('span');
        bar.style.width = `${Math.round(Math.max(0, Math.min(1, cell.fraction)) * 120)}px`;
        td.append(bar);
      } else {
        td.textContent = cell;
      }
      tr.append(td);
    }
    return tr;
  }));
}

function makeChart(id, series) {
  const element = document.getElementById(id);
  return new uPlot({
    width: element.clientWidth || 400,
    height: 180,
    series: [{}, ...series.map(([label, stroke]) => ({ label, stroke, width: 2 }))],
    axes: [{}, { size: 60 }],
  }, [[], ...series.map(() => [])], element);
}

const dashboard = {
  scrapes: 0,
  last: null,      // the last scrape's samples
  summary: null,   // and what they say
  history: { t: [], connections: [], calls: [], handshakes: [], bytesIn: [], bytesOut: [] },
  charts: {},
};
window.dashboard = dashboard;

function draw(summary, previous, t, dt) {
  const h = dashboard.history;
  const rate = (key) => (previous && dt > 0 ? Math.max(0, (summary[key] - previous[key]) / dt) : 0);
  h.t.push(t);
  h.connections.push(summary.connections);
  h.calls.push(rate('calls'));
  h.handshakes.push(rate('handshakes'));
  h.bytesIn.push(rate('bytesIn'));
  h.bytesOut.push(rate('bytesOut'));
  if (h.t.length > keep) for (const series of Object.values(h)) series.shift();
  dashboard.charts.connections.setData([h.t, h.connections]);
  dashboard.charts.rates.setData([h.t, h.calls, h.handshakes]);
  dashboard.charts.traffic.setData([h.t, h.bytesIn, h.bytesOut]);

  document.getElementById('connections').textContent = number(summary.connections);
  document.getElementById('calls').textContent = number(summary.calls);
  document.getElementById('handshakes').textContent = number(summary.handshakes);
  document.getElementById('closed').textContent = number(summary.closed);
  document.getElementById('send-queue').textContent = bytes(summary.sendQueue);
  const most = summary.closes[0]?.count ?? 1;
  fillTable('closes', summary.closes.map((c) => [c.reason, number(c.count), { fraction: c.count / most }]));
  const commands = summary.commands.filter((c) => c.calls > 0)
      .map((c) => ({ ...c, p99: p99(c) }))
      .sort((a, b) => (b.p99 || 0) - (a.p99 || 0) || b.calls - a.calls).slice(0, 10);
  fillTable('commands', commands.map((c) => [c.name, number(c.calls), number(c.errors),
                                             seconds(c.count ? c.sum / c.count : NaN), seconds(c.p99)]));
  fillTable('nodes', summary.nodes.map((n) => [
    n.name + (n.draining ? ' (draining)' : ''),
    `${number(n.connections)} / ${number(n.capacity)}`,
    { fraction: n.capacity ? n.connections / n.capacity : 0 },
    `${(n.cpu ?? 0).toFixed(2)} cores`,
    bytes(n.memory_bytes ?? 0),
  ]));
  document.getElementById('no-cluster').hidden = summary.nodes.length > 0;
}

async function scrape() {
  const started = performance.now();
  try {
    const response = await fetch('metrics', { cache: 'no-store' });
    if (!response.ok) throw new Error(`/metrics: HTTP ${response.status}`);
    const samples = parseMetrics(await response.text());
    const summary = summarise(samples);
    const t = Date.now() / 1000;
    const dt = dashboard.lastTime ? t - dashboard.lastTime : 0;
    draw(summary, dashboard.summary, t, dt);
    dashboard.last = samples;
    dashboard.summary = summary;
    dashboard.lastTime = t;
    dashboard.scrapes++;
    document.getElementById('scrapes').textContent = String(dashboard.scrapes);
    document.getElementById('state').textContent = `live, every ${interval} ms`;
  } catch (e) {
    document.getElementById('state').textContent = `cannot read /metrics: ${e.message}`;
  }
  setTimeout(scrape, Math.max(0, interval - (performance.now() - started)));
}

dashboard.charts.connections = makeChart('chart-connections', [['connections', '#4a7fd4']]);
dashboard.charts.rates = makeChart('chart-rates', [['calls', '#4a7fd4'], ['handshakes', '#d48a4a']]);
dashboard.charts.traffic = makeChart('chart-traffic', [['in', '#4ad48a'], ['out', '#d44a7f']]);
scrape();
