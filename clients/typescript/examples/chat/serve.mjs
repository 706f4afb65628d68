// Serves the chat page and the client bundle on a loopback port (the page needs nothing else).
//   cd clients/typescript && ./build.sh && node examples/chat/serve.mjs [port]
// then start a cluster node with WebSocket on (docs/browser.md) and open
//   http://127.0.0.1:8080/index.html?host=127.0.0.1:7100&key=<hawser-server --print-public-key>
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';

const files = {
  '/index.html': [new URL('./index.html', import.meta.url), 'text/html'],
  '/chat.mjs': [new URL('./chat.mjs', import.meta.url), 'text/javascript'],
  '/hawser.browser.js': [new URL(process.env.HAWSER_BUNDLE ?? '../../dist/hawser.browser.js',
                                 import.meta.url), 'text/javascript'],
};
const port = Number(process.argv[2] ?? 8080);
const server = createServer(async (req, res) => {
  const file = files[new URL(req.url, 'http://x').pathname];
  if (!file) return res.writeHead(404).end('not found');
  try {
    res.writeHead(200, { 'content-type': file[1] }).end(await readFile(file[0]));
  } catch (e) {
    res.writeHead(500).end(String(e));
  }
});
server.listen(port, '127.0.0.1', () => console.log(`chat page on http://127.0.0.1:${server.address().port}/index.html`));
