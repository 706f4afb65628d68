// Real servers for the tests: hawser-server and nats-server on loopback ports they pick
// themselves, found by reading their start-up lines (waited for, never slept on).
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const serverBinary = process.env.HAWSER_SERVER;
export const packageDir = process.env.HAWSER_TS;  // the built package (build.sh OUT)
if (!serverBinary || !packageDir) throw new Error('set HAWSER_SERVER and HAWSER_TS');
export const hawser = await import(join(packageDir, 'dist/index.js'));

// Starts `command` and resolves with the first match of `pattern` in its output.
// `watch(pattern)` resolves with the first match of a later line too.
function startAndWatch(command, args, pattern, what) {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const watchers = [];
  let exited = null;
  const watch = (p) => new Promise((resolve, reject) => {
    const m = log.match(p);
    if (m) return resolve(m);
    if (exited) return reject(exited);
    watchers.push({ p, resolve, reject });
  });
  const look = (chunk) => {
    log += chunk;
    for (const w of [...watchers]) {
      const m = log.match(w.p);
      if (m) watchers.splice(watchers.indexOf(w), 1), w.resolve(m);
    }
  };
  child.stdout.on('data', look);
  child.stderr.on('data', look);
  child.on('exit', (code) => {
    exited = new Error(`${what} exited (${code}):\n${log}`);
    for (const w of watchers.splice(0)) w.reject(exited);
  });
  return watch(pattern).then((match) => ({ child, match, log: () => log, watch }));
}

const stopChild = (child) => new Promise((resolve) => {
  if (child.exitCode !== null || child.signalCode !== null) return resolve();
  child.once('exit', resolve);
  child.kill('SIGTERM');
});

export async function startNats() {
  const { child, match } = await startAndWatch(
      'nats-server', ['-a', '127.0.0.1', '-p', '-1'],
      /Listening for client connections on 127\.0\.0\.1:(\d+)/, 'nats-server');
  return { url: `nats://127.0.0.1:${match[1]}`, stop: () => stopChild(child) };
}

/** A hawser-server with this TOML configuration; its key, port, and a stop(). */
export async function startServer(toml = '', args = []) {
  const dir = mkdtempSync(join(tmpdir(), 'hawser-ts-'));
  writeFileSync(join(dir, 'server.toml'), toml);
  const data = join(dir, 'data');
  const key = execFileSync(serverBinary, ['--data-dir', data, '--print-public-key']).toString().trim();
  const { child, match, log, watch } = await startAndWatch(
      serverBinary, ['--data-dir', data, '--listen', '127.0.0.1:0', '--threads', '1',
                     '-c', join(dir, 'server.toml'), ...args],
      /listening on .*\(ports (\d+)\)/, 'hawser-server');
  return {
    key,
    port: Number(match[1]),
    log,
    watch,
    stop: async () => {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves with the next value `register` hands its callback. */
export const next = (register) => new Promise((resolve) => register(resolve));
