// Headless Chromium (Debian's chromium) for the page tests, driven over the Chrome DevTools
// Protocol with Node's own WebSocket client: no Playwright or Puppeteer, which would download
// browsers of their own. Chromium runs with the flags this machine's closed network needs.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Starts Chromium; resolves once its DevTools endpoint is known (its start-up line). */
export function startChromium() {
  const profile = mkdtempSync(join(tmpdir(), 'hawser-chromium-'));
  const chromium = spawn(process.env.CHROMIUM ?? 'chromium', [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--remote-debugging-address=127.0.0.1', '--remote-debugging-port=0',
    `--user-data-dir=${profile}`, '--window-size=1200,900', 'about:blank',
  ], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });  // its own process group
  let log = '';
  // Kills Chromium's whole process group (its renderers too, which write the profile until
  // they die), waits for the main process, then removes the profile.
  const stop = () => new Promise((resolve) => {
    const removed = () =>
      resolve(rmSync(profile, { recursive: true, force: true, maxRetries: 20, retryDelay: 50 }));
    if (chromium.exitCode !== null || chromium.signalCode !== null) return removed();
    chromium.once('exit', removed);
    process.kill(-chromium.pid, 'SIGKILL');
  });
  return new Promise((resolve, reject) => {
    chromium.stderr.on('data', (chunk) => {
      log += chunk;
      const m = log.match(/DevTools listening on (ws:\/\/[^\s]+)/);
      if (m) resolve({ openPage: (url) => openPage(new URL(m[1]), url), stop });
    });
    chromium.on('exit', (code) => reject(new Error(`chromium exited (${code}):\n${log}`)));
  });
}

// A DevTools Protocol session on a new page target.
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
    if (r.exceptionDetails) throw new Error(r.exceptionDetails.exception?.description ?? r.exceptionDetails.text);
    return r.result.value;
  };
  const nextEvent = (method) => new Promise((resolve) => events.set(method, resolve));
  return { send, evaluate, nextEvent, close: () => ws.close() };
}

// A new page at `url`, once its load event has fired.
async function openPage(endpoint, url) {
  const page = await devtools(endpoint);
  await page.send('Page.enable');
  const loaded = page.nextEvent('Page.loadEventFired');
  await page.send('Page.navigate', { url });
  await loaded;
  return page;
}

/** An expression that resolves in the page once `condition` holds, watching the DOM change,
 *  and fails after `limitMs` (a bound, so that a broken page fails the test, not hangs it). */
export const when = (condition, limitMs = 20000) => `new Promise((resolve, reject) => {
  const holds = () => ${condition};
  if (holds()) return resolve(true);
  const timer = setTimeout(() => reject(new Error(${JSON.stringify(`not within ${limitMs} ms: ${condition}`)})), ${limitMs});
  new MutationObserver((_, observer) => {
    if (holds()) observer.disconnect(), clearTimeout(timer), resolve(true);
  }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
})`;

/** Saves a PNG of the page beside the build (HAWSER_ARTIFACTS), when that is set. */
export async function screenshot(page, name) {
  const shot = await page.send('Page.captureScreenshot', { format: 'png' });
  if (process.env.HAWSER_ARTIFACTS)
    writeFileSync(join(process.env.HAWSER_ARTIFACTS, name), Buffer.from(shot.data, 'base64'));
}
