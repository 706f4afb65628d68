// The chat page: joins a channel, shows what is said there, and says what is typed. The server
// (hawser-server's demo command chat.say) publishes each line to every node of the cluster.
//   index.html?host=127.0.0.1:7100&key=<server key>&room=chat.lobby&name=ann
import { Client } from './hawser.browser.js';

const params = new URLSearchParams(location.search);
const room = params.get('room') ?? 'chat.lobby';
const name = params.get('name') ?? `guest${Math.floor(Math.random() * 1000)}`;
const $ = (id) => document.getElementById(id);
$('room').textContent = room;
$('me').textContent = name;

function show(line) {
  const li = document.createElement('li');
  li.textContent = line;
  $('lines').append(li);
  li.scrollIntoView();
}

const client = new Client({
  url: `ws://${params.get('host') ?? location.hostname + ':7100'}/hawser`,
  serverPublicKey: params.get('key'),
  reconnect: { enabled: true },
});
// A publication arrives as "<channel> <text>"; show the text.
client.commands.directConsole('chat.message', (line) => show(line.slice(line.indexOf(' ') + 1)));
client.onDisconnect(() => ($('status').textContent = 'reconnecting…'));
client.onConnect(() => ($('status').textContent = 'online'));

$('say').addEventListener('submit', async (event) => {
  event.preventDefault();
  const text = $('text').value.trim();
  if (!text) return;
  $('text').value = '';
  try {
    await client.call('chat.say', `${room} ${name}: ${text}`);
  } catch (e) {
    show(`(not sent: ${e.message})`);
  }
});

try {
  await client.connect();
  await client.subscribe(room);  // joined again by itself after a reconnect
  $('status').textContent = 'online';
  $('text').disabled = $('send').disabled = false;
  $('text').focus();
} catch (e) {
  $('status').textContent = `cannot connect: ${e.message}`;
}
