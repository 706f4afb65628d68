// Real pages in headless Chromium (Debian's chromium) talk to a real hawser-server over WebSocket
// with the bundled client: a test page connects, calls, gets a push, a call from the server and a
// channel message; two chat pages (examples/chat) talk to each other. Asserted from the pages'
// DOM, through the Chrome DevTools Protocol; screenshots are saved beside the build
// (HAWSER_ARTIFACTS).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { screenshot, startChromium, when } from './chromium.mjs';
import { packageDir, startNats, startServer } from './servers.mjs';

const pageDir = new URL('./browser/', import.meta.url).pathname;
const files = {
  '/page.html': [join(pageDir, 'page.html'), 'text/html'],
  '/page.mjs': [join(pageDir, 'page.mjs'), 'text/javascript'],
  '/hawser.browser.js': [join(packageDir, 'dist/hawser.browser.js'), 'text/javascript'],
};

let nats, server, web, chat, browser;
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
  browser = await startChromium();
});
after(async () => {
  await browser?.stop();
  chat?.kill();
  web?.close();
  await server?.stop();
  await nats?.stop();
});

test('a page connects, calls, and receives a push, a call and a channel message', async () => {
  const query = new URLSearchParams({ host: `127.0.0.1:${server.port}`, key: server.key });
  const page = await browser.openPage(`http://127.0.0.1:${web.address().port}/page.html?${query}`);
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
    return browser.openPage(`${chat.url.replace(/index\.html$/, '')}index.html?${query}`);
  };
  const [ann, bob] = await Promise.all([open('ann'), open('bob')]);
  // Online and in the room: the input is enabled once the subscription stands.
  const online = when(`!document.getElementById('text').disabled`);
  await Promise.all([ann.evaluate(online), bob.evaluate(online)]);
  await ann.evaluate(`document.getElementById('text').value = 'hello bob';
                      document.getElementById('say').requestSubmit()`);
  const heard = when(`[...document.querySelectorAll('#lines li')].some((li) => li.textContent === 'ann: hello bob')`);
  await Promise.all([bob.evaluate(heard), ann.evaluate(heard)]);
  await screenshot(bob, 'chat-example.png');
  ann.close();
  bob.close();
});
