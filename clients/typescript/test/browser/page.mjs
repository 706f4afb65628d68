// Runs in the browser: every step is written into the page, which the test reads from the DOM.
import { Client } from '/hawser.browser.js';

const params = new URLSearchParams(location.search);
const log = (id, text) => {
  const li = document.createElement('li');
  li.id = id;
  li.textContent = text;
  document.getElementById('log').append(li);
};
const status = document.getElementById('status');

async function run() {
  const client = new Client({
    url: `ws://${params.get('host')}/hawser`,
    serverPublicKey: params.get('key'),
  });
  const pushed = new Promise((resolve) => client.commands.directConsole('pushed', resolve));
  const heard = new Promise((resolve) => client.commands.directConsole('chat.message', resolve));
  client.commands.console('page.title', () => document.title);
  await client.connect();
  log('hello', await client.call('hello', 'browser'));
  log('sum', String((await client.call('sum', [20, 22]))[0]));
  await client.call('push', 'a push to the page');
  log('push', await pushed);
  log('callback', await client.call('call.back', 'page.title x'));
  await client.subscribe('chat.browser');
  await client.call('chat.say', 'chat.browser hello, channel');
  log('channel', await heard);
  client.close();
}

// The test awaits this; the page shows the same.
window.hawserTest = run().then(
    () => (status.textContent = 'ok'),
    (e) => (status.textContent = `failed: ${e.message}`));
