// Real pages in headless Chromium (Debian's chromium) talk to a real hawser-server over WebSocket
// with the bundled client: a test page connects, calls, gets a push, a call from the server and a
// channel message; two chat pages (examples/chat) talk to each other. Asserted from the pages'
// DOM, through the Chrome DevTools Protocol; screenshots are saved beside the build
// (HAWSER_ARTIFACTS).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { packageDir, startNats, startServer } from './servers.mjs';

const pageDir = new URL('./browser/', import.meta.url).pathname;
const files = {
  '/page.html': [join(pageDir, 'page.html'), 'text/html'],
  '/page.mjs': [join(pageDir, 'page.mjs'), 'text/javascript'],
  '/hawser.browser.js': [join(packageDir, 'dist/hawser.browser.js'), 'text/javascript'],
};

let nats, server, web, chromium, profile, chat, devtoolsEndpoint;
before(async () => {
  nats = await startNats();
  server = await startServer(`[websocket]\non_native_ports = true\npath = "/hawser"\n` +
                             `[cluster]\nclient_channel_prefixes = ["chat."]\n`,
                             ['--cluster', nats.url, '--node-name', 'browser-test']);
  web = createServer((req, res) => {
    const file = files[new URL(req.url, 'http://x').pathname];
    if (!file) return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': file[1] }).end(readFileSync(file[0]));
  });
  await new Promise((resolve) => web.listen(0, '127.0.0.1', resolve));
  // The chat example's own server, with the bundle just built.
  chat = spawn(process.execPath, [new URL('../examples/chat/serve.mjs', import.meta.url).pathname, '0'],
               { env: { ...process.env, HAWSER_BUNDLE: files['/hawser.browser.js'][0] } });
  chat.url = await new Promise((resolve, reject) => {
    let out = '';
    chat.stdout.on('data', (chunk) => {
      const m = (out += chunk).match(/(http:\/\/\S+)/);
      if (m) resolve(m[1]);
    });
    chat.on('exit', (code) => reject(new Error(`the chat example's server exited (${code})`)));
  });
  devtoolsEndpoint = await startChromium();
});
after(async () => {
  chromium?.kill('SIGKILL');
  chat?.kill();
  web?.close();
  await server?.stop();
  await nats?.stop();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

// Starts Chromium and resolves with its DevTools endpoint, read from its start-up line.
function startChromium() {
  profile = mkdtempSync(join(tmpdir(), 'hawser-chromium-'));
  chromium = spawn(process.env.CHROMIUM ?? 'chromium', [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--remote-debugging-address=127.0.0.1', '--remote-debugging-port=0',
    `--user-data-dir=${profile}`, '--window-size=900,600', 'about:blank',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  return new Promise((resolve, reject) => {
    chromium.stderr.on('data', (chunk) => {
      log += chunk;
      const m = log.match(/DevTools listening on (ws:\/\/[^\s]+)/);
      if (m) resolve(new URL(m[1]));
    });
    chromium.on('exit', (code) => reject(new Error(`chromium exited (${code}):\n${log}`)));
  });
}

// A DevTools Protocol session on one page target (Node's WebSocket client).
async function devtools(endpoint) {
  const target = await (await fetch(`http://${endpoint.host}/json/new?about:blank`, { method: 'PUT' })).json();
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error('cannot reach the page over DevTools'));
  });
  let nextId = 1;
  const waiting = new Map();
  const events = new Map();  // method -> resolve of the next such event
  ws.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.method) return events.get(message.method)?.(message.params);
    const done = waiting.get(message.id);
    if (!done) return;
    waiting.delete(message.id);
    if (message.error) done.reject(new Error(message.error.message));
    else done.resolve(message.result);
  };
  const send = (method, params = {}) => new Promise((resolve, reject) => {
    const id = nextId++;
    waiting.set(id, { resolve, reject });
    ws.send(JSON.stringify({ id, method, params }));
  });
  const evaluate = async (expression) => {
    const r = await send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true });
    if (r.exceptionDetails) throw new Error(r.exceptionDetails.text);
    return r.result.value;
  };
  const nextEvent = (method) => new Promise((resolve) => events.set(method, resolve));
  return { send, evaluate, nextEvent, close: () => ws.close() };
}

// A new page at `url`, once its load event has fired.
async function openPage(url) {
  const page = await devtools(devtoolsEndpoint);
  await page.send('Page.enable');
  const loaded = page.nextEvent('Page.loadEventFired');
  await page.send('Page.navigate', { url });
  await loaded;
  return page;
}

// Resolves in the page once `condition` (an expression) holds, watching the DOM change.
const when = (condition) => `new Promise((resolve) => {
  const holds = () => ${condition};
  if (holds()) return resolve(true);
  new MutationObserver((_, observer) => {
    if (holds()) observer.disconnect(), resolve(true);
  }).observe(document.body, { subtree: true, childList: true, characterData: true });
})`;

async function screenshot(page, name) {
  const shot = await page.send('Page.captureScreenshot', { format: 'png' });
  if (process.env.HAWSER_ARTIFACTS)
    writeFileSync(join(process.env.HAWSER_ARTIFACTS, name), Buffer.from(shot.data, 'base64'));
}

test('a page connects, calls, and receives a push, a call and a channel message', async () => {
  const query = new URLSearchParams({ host: `127.0.0.1:${server.port}`, key: server.key });
  const page = await openPage(`http://127.0.0.1:${web.address().port}/page.html?${query}`);
  await page.evaluate('window.hawserTest');  // the page's module has run by its load event
  const dom = await page.evaluate(`({
    status: document.getElementById('status').textContent,
    items: Object.fromEntries([...document.querySelectorAll('#log li')].map((li) => [li.id, li.textContent])),
  })`);
  await screenshot(page, 'browser-test.png');
  page.close();
  assert.equal(dom.status, 'ok');
  assert.deepEqual(dom.items, {
    hello: 'hello, browser',
    sum: '42',
    push: 'a push to the page',
    callback: 'Hawser from a browser',
    channel: 'chat.browser hello, channel',
  });
});

test('two chat pages (examples/chat) talk on a channel', async () => {
  const open = (name) => {
    const query = new URLSearchParams({ host: `127.0.0.1:${server.port}`, key: server.key,
                                        room: 'chat.example', name });
    return openPage(`${chat.url.replace(/index\.html$/, '')}index.html?${query}`);
  };
  const [ann, bob] = await Promise.all([open('ann'), open('bob')]);
  const online = when(`document.getElementById('status').textContent === 'online'`);
  await Promise.all([ann.evaluate(online), bob.evaluate(online)]);
  await ann.evaluate(`document.getElementById('text').value = 'hello bob';
                      document.getElementById('say').requestSubmit()`);
  const heard = when(`[...document.querySelectorAll('#lines li')].some((li) => li.textContent === 'ann: hello bob')`);
  await Promise.all([bob.evaluate(heard), ann.evaluate(heard)]);
  await screenshot(bob, 'chat-example.png');
  ann.close();
  bob.close();
});
