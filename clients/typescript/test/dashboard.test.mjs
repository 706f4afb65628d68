// hawser-server's live dashboard in headless Chromium: the page loads from the admin listener,
// its charts and tables update while TypeScript clients drive load, and its numbers match what
// /metrics says. A screenshot is saved beside the build (HAWSER_ARTIFACTS).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { screenshot, startChromium, when } from './chromium.mjs';
import { hawser, startNats, startServer } from './servers.mjs';

let nats, server, browser, admin;
before(async () => {
  nats = await startNats();
  server = await startServer('[admin]\nlisten = "127.0.0.1:0"\n',
                             ['--cluster', nats.url, '--node-name', 'dashboard-node']);
  admin = Number((await server.watch(/admin: \/metrics on .* \(port (\d+)\)/))[1]);
  browser = await startChromium();
});
after(async () => {
  await browser?.stop();
  await server?.stop();
  await nats?.stop();
});

// /metrics as the test reads it: series text -> value.
async function metrics() {
  const text = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
  const out = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}
const total = (m, prefix) =>
  [...m].filter(([k]) => k === prefix || k.startsWith(prefix + '{')).reduce((a, [, v]) => a + v, 0);

test('the dashboard shows load as it happens, with the numbers of /metrics', async () => {
  const page = await browser.openPage(`http://127.0.0.1:${admin}/?interval=200`);
  const scrapes = () => page.evaluate('window.dashboard.scrapes');
  await page.evaluate(when(`Number(document.getElementById('scrapes').textContent) >= 2`));
  assert.equal(await page.evaluate(`document.getElementById('connections').textContent`), '0');

  // Load: three clients, 300 calls.
  const clients = [];
  for (let i = 0; i < 3; ++i) {
    const client = new hawser.Client({ host: '127.0.0.1', port: server.port, serverPublicKey: server.key });
    await client.connect();
    clients.push(client);
  }
  await Promise.all(clients.map((c) => Promise.all(
      Array.from({ length: 100 }, (_, i) => c.call('echo', `call ${i}`)))));
  await clients[0].call('sum', [1, 2]);
  await page.evaluate(when(`document.getElementById('connections').textContent === '3' &&
      Number(document.getElementById('calls').textContent.replace(/,/g, '')) >= 301`));

  // The charts drew it: three connections, a call rate above zero at some point.
  const drawn = await page.evaluate(`({
    connections: window.dashboard.charts.connections.data[1].at(-1),
    points: window.dashboard.charts.connections.data[0].length,
    peakCalls: Math.max(...window.dashboard.charts.rates.data[1]),
    canvases: document.querySelectorAll('canvas').length,
  })`);
  assert.equal(drawn.connections, 3);
  assert.ok(drawn.points >= 3, `${drawn.points} points`);
  assert.ok(drawn.peakCalls > 0);
  assert.ok(drawn.canvases >= 3);

  // The load has stopped: after one more scrape, the page and /metrics agree.
  const seen = await scrapes();
  await page.evaluate(when(`window.dashboard.scrapes > ${seen}`));
  const m = await metrics();
  const shown = await page.evaluate(`({
    connections: document.getElementById('connections').textContent,
    calls: document.getElementById('calls').textContent,
    handshakes: document.getElementById('handshakes').textContent,
    echo: [...document.querySelectorAll('#commands tbody tr')]
        .map((tr) => [...tr.cells].map((td) => td.textContent)).find((cells) => cells[0] === 'echo'),
    nodes: [...document.querySelectorAll('#nodes tbody tr')].map((tr) => tr.cells[0].textContent),
  })`);
  const plain = (v) => Number(v.replace(/,/g, ''));
  assert.equal(plain(shown.connections), m.get('hawser_connections'));
  assert.equal(plain(shown.calls), total(m, 'hawser_command_calls_total'));
  assert.equal(plain(shown.handshakes), m.get('hawser_handshakes_total'));
  assert.equal(plain(shown.echo[1]), m.get('hawser_command_calls_total{command="echo"}'));
  assert.equal(m.get('hawser_command_calls_total{command="echo"}'), 300);
  assert.deepEqual(shown.nodes, ['dashboard-node']);
  await screenshot(page, 'dashboard.png');
  page.close();
  for (const c of clients) c.close();
});
