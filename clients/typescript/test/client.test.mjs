// The TypeScript client against real hawser-server processes on loopback, over TCP and over
// WebSocket: calls of every kind both ways, pushes, channels (through a real nats-server),
// compression, rekeying, Noise NK and XX, reconnects, and the errors a program sees.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { hawser, next, startNats, startServer } from './servers.mjs';

const { Client, CloseReason, Errc, HawserError } = hawser;

// A client private key and its public key (X25519 test keys of the Noise vectors).
const CLIENT_PRIVATE = 'e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1';
const CLIENT_PUBLIC = '6bc3822a2aa7f4e6981d6538692b3cdf3e6df9eea6ed269eb41d93c22757b75a';

let nats, zstdServer, lz4Server, keyedServer;
before(async () => {
  nats = await startNats();
  const common = `
[websocket]
on_native_ports = true
path = "/hawser"
[cluster]
client_channel_prefixes = ["chat."]
`;
  // The server rekeys every 3 messages: the client meets rekey pieces all the time.
  zstdServer = await startServer(`[transport]\nrekey_messages = 3\n${common}`,
                                 ['--cluster', nats.url, '--node-name', 'ts-zstd']);
  lz4Server = await startServer(`[transport]\ncompression = "lz4"\n${common}`,
                                ['--cluster', nats.url, '--node-name', 'ts-lz4']);
  keyedServer = await startServer(`allowed_client_keys = ["${CLIENT_PUBLIC}"]\n` +
                                  `[timeouts]\nidle_ms = 1000\n${common}`,
                                  ['--cluster', nats.url, '--node-name', 'ts-keyed']);
});
after(async () => {
  await Promise.all([zstdServer, lz4Server, keyedServer].map((s) => s?.stop()));
  await nats?.stop();
});

const links = {
  tcp: (s) => ({ host: '127.0.0.1', port: s.port }),
  websocket: (s) => ({ url: `ws://127.0.0.1:${s.port}/hawser` }),
};

async function connected(server, link, extra = {}) {
  const client = new Client({ ...links[link](server), serverPublicKey: server.key, ...extra });
  await client.connect();
  return client;
}

for (const link of Object.keys(links)) {
  describe(`over ${link}`, () => {
    test('console and DataFrame calls, large replies in both codecs', async () => {
      for (const server of [zstdServer, lz4Server]) {
        const client = await connected(server, link);
        assert.equal(await client.call('hello', 'browser'), 'hello, browser');
        // 300 KB each way: several pieces per record, compressed by the server.
        const big = 'abcdefghij'.repeat(30_000) + 'end';
        assert.equal(await client.call('echo', big), big);
        const frame = [1, -2, 2n ** 62n, 1.5, 'text', new Uint8Array([0, 255]), [1, 2, 3],
                       { name: 'x', n: 7 }, null, true];
        assert.deepEqual(await client.call('echo.frame', frame), frame);
        assert.deepEqual(await client.call('sum', [1, 2, 39]), [42]);
        // Integers past 32 bits leave as MessagePack integers (not floats, which the server
        // refuses as int64), and come back as numbers while a number holds them exactly.
        assert.deepEqual(await client.call('sum', [2 ** 40, -(2 ** 41), 1]), [-(2 ** 40) + 1]);
        assert.deepEqual(await client.call('sum', [2n ** 62n, 2n ** 62n - 1n]), [2n ** 63n - 1n]);
        // Many calls at once: replies are matched by id, whatever their order.
        const replies = await Promise.all(
            Array.from({ length: 200 }, (_, i) => client.call('echo', `n${i}`)));
        replies.forEach((r, i) => assert.equal(r, `n${i}`));
        client.close();
      }
    });

    test('errors are typed', async () => {
      const client = await connected(zstdServer, link);
      await assert.rejects(client.call('no.such.command', 'x'),
                           (e) => e instanceof HawserError && e.code === Errc.unknown_command);
      // A one-way command: the server's log shows it arrived.
      client.send('log', `a direct message over ${link}`);
      await zstdServer.watch(new RegExp(`log from .*: a direct message over ${link}`));
      await assert.rejects(client.call('hello', ['a DataFrame to a console command']),
                           (e) => e.code === Errc.wrong_kind);
      await assert.rejects(client.call('sum', ['not a number']),
                           (e) => e instanceof HawserError && e.code === Errc.handler_error);
      client.close();
      await assert.rejects(client.call('hello', 'x'), (e) => e.code === Errc.not_connected);
      assert.throws(() => client.send('log', 'x'), (e) => e.code === Errc.not_connected);
    });

    test('the server pushes and calls the client', async () => {
      const client = new Client({ ...links[link](zstdServer), serverPublicKey: zstdServer.key });
      const pushes = [];
      client.commands
          .directConsole('pushed', (text) => pushes.push(text))
          .console('client.upper', (text) => text.toUpperCase())
          .console('client.slow', async (text) => { await null; return `later ${text}`; })
          .console('client.refuses', () => {
            throw new HawserError(Errc.not_found, 'nothing here');
          })
          .dataframe('client.frame', (frame) => frame);
      await client.connect();
      assert.equal(await client.call('push', 'one'), 'pushed');
      assert.deepEqual(pushes, ['one'], 'the push arrives before the reply');
      assert.equal(await client.call('call.back', 'client.upper shout'), 'SHOUT');
      assert.equal(await client.call('call.back', 'client.slow x'), 'later x');
      await assert.rejects(client.call('call.back', 'client.refuses x'),
                           (e) => e.code === Errc.not_found && e.detail === 'nothing here');
      await assert.rejects(client.call('call.back', 'client.missing x'),
                           (e) => e.code === Errc.unknown_command);
      await assert.rejects(client.call('call.back', 'client.frame x'),
                           (e) => e.code === Errc.wrong_kind);
      // A DataFrame call from the server, answered by the client's DataFrame command.
      const values = [1, 'two', [2n ** 60n], { four: 4.5 }];
      assert.deepEqual(await client.call('call.back.frame', ['client.frame', ...values]), values);
      client.close();
    });

    test('channels reach subscribers on every node', async () => {
      const a = await connected(zstdServer, link), b = await connected(lz4Server, link);
      const heard = next((resolve) => b.commands.directConsole('chat.message', resolve));
      await b.subscribe('chat.lobby');
      assert.equal(await a.call('chat.say', 'chat.lobby hi from the other node'), 'said');
      assert.equal(await heard, 'chat.lobby hi from the other node');
      await assert.rejects(a.subscribe('private.room'), (e) => e.code === Errc.not_allowed);
      await assert.rejects(a.call('chat.say', 'private.room x'), (e) => e.code === Errc.not_allowed);
      a.close();
      b.close();
    });
  });
}

test('Noise XX: a client key the server allows, and trust on first use', async () => {
  const client = await connected(keyedServer, 'tcp', { clientPrivateKey: CLIENT_PRIVATE });
  assert.equal(await client.call('hello', 'xx'), 'hello, xx');
  client.close();
  // No pinned key: the first server's key is learnt (and pinned for reconnects).
  const tofu = new Client({ url: `ws://127.0.0.1:${zstdServer.port}/hawser`, trustOnFirstUse: true });
  await tofu.connect();
  assert.equal(tofu.serverPublicKey, zstdServer.key);
  assert.equal(await tofu.call('hello', 'tofu'), 'hello, tofu');
  tofu.close();
  assert.equal(tofu.serverPublicKey, zstdServer.key, 'still pinned after the close');
});

test('a refused handshake says why', async () => {
  const wrong = 'aa'.repeat(32);
  await assert.rejects(new Client({ host: '127.0.0.1', port: zstdServer.port, serverPublicKey: wrong }).connect(),
                       (e) => e.code === Errc.not_connected && e.closeReason === CloseReason.handshake_failed);
  // A client whose key the server does not take: its handshake succeeds, then the server's
  // first message is a goodbye. connect() waits for the server to answer a first ping, so it
  // fails with that goodbye, anonymous (NK) or with a key not on the list (XX), and nothing
  // is left connected.
  for (const clientPrivateKey of [undefined, 'ab'.repeat(32)]) {
    const refused = new Client({ host: '127.0.0.1', port: keyedServer.port, serverPublicKey: keyedServer.key,
                                 clientPrivateKey });
    let disconnects = 0;
    refused.onDisconnect(() => ++disconnects);
    await assert.rejects(refused.connect(),
                         (e) => e.code === Errc.not_connected && e.closeReason === CloseReason.key_not_allowed);
    assert.equal(refused.connected, false);
    assert.equal(disconnects, 0, 'never connected, so never disconnected');
  }
  await assert.rejects(new Client({ host: '127.0.0.1', port: 1, serverPublicKey: zstdServer.key }).connect(),
                       (e) => e.code === Errc.not_connected && e.closeReason === CloseReason.connect_failed);
});

test('reconnects after the server closes it, and joins its channels again', async () => {
  // The keyed server closes connections idle for a second; this client sends no heartbeats.
  const client = new Client({
    host: '127.0.0.1', port: keyedServer.port, serverPublicKey: keyedServer.key,
    clientPrivateKey: CLIENT_PRIVATE, timeouts: { heartbeatMs: 0 },
    reconnect: { enabled: true, minDelayMs: 10, maxDelayMs: 50 },
  });
  const reasons = [];
  let connects = 0;
  const twice = next((resolve) => client.onConnect(() => ++connects === 2 && resolve()));
  client.onDisconnect((reason) => reasons.push(reason));
  await client.connect();
  await client.subscribe('chat.again');
  await twice;
  assert.deepEqual(reasons, [CloseReason.idle_timeout]);
  const heard = next((resolve) => client.commands.directConsole('chat.message', resolve));
  assert.equal(await client.call('chat.say', 'chat.again back'), 'said');
  assert.equal(await heard, 'chat.again back');
  client.close();
});

test('the client rekeys its own sending key, and survives hooks and handlers that throw', async () => {
  const reported = [];
  const client = new Client({
    url: `ws://127.0.0.1:${zstdServer.port}/hawser`, serverPublicKey: zstdServer.key,
    rekey: { messages: 2 },
    onError: (what) => reported.push(what),
  });
  client.onConnect(() => {
    throw new Error('a broken hook');
  });
  const pushed = next((resolve) => client.commands.directConsole('pushed', async () => {
    resolve();
    throw new Error('a broken async handler');
  }));
  await client.connect();
  // Sent in many pieces, so that the client rekeys many times on the way.
  const replies = [];
  for (let i = 0; i < 20; ++i) replies.push(await client.call('echo', `piece ${i}`));
  assert.deepEqual(replies, Array.from({ length: 20 }, (_, i) => `piece ${i}`));
  await client.call('push', 'x');
  await pushed;
  assert.equal(await client.call('hello', 'still here'), 'hello, still here');
  assert.ok(reported.includes('an onConnect hook'), reported.join());
  assert.ok(reported.includes('one-way command pushed'), reported.join());
  client.close();
});
