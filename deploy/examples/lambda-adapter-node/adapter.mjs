// adapter.mjs - runs an unchanged AWS Lambda handler behind a Sluice push target
// (Node 18+, no dependencies):   node adapter.mjs ./handler.mjs [port]
// Each POST's JSON body is the event; the handler's return value is the answer (200,
// JSON), so a returned {batchItemFailures: [...]} reaches the broker; a throw answers 500.
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { basename, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [file, port = '8080'] = process.argv.slice(2);
if (!file) throw new Error('usage: node adapter.mjs ./handler.mjs [port]');
const { handler } = await import(pathToFileURL(resolve(file)).href);
const timeoutMs = Number(process.env.TIMEOUT_MS ?? 30000); // what getRemainingTimeInMillis counts down
const functionName = process.env.FUNCTION_NAME ?? basename(file).replace(/\.[cm]?js$/, '');

const server = createServer(async (req, res) => {
  const send = (status, value) => {
    const body = JSON.stringify(value ?? null); // undefined answers null, as Lambda does
    res.writeHead(status, { 'content-type': 'application/json' }).end(body);
  };
  if (req.method !== 'POST') return send(405, { errorMessage: 'POST the event' });
  const chunks = [];
  for await (const c of req) chunks.push(c);
  let event;
  try { event = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch (e) {
    return send(400, { errorType: 'InvalidRequestContentException', errorMessage: e.message });
  }
  const deadline = Date.now() + timeoutMs;
  const context = { awsRequestId: randomUUID(), functionName,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()) };
  try { send(200, await handler(event, context)); } catch (e) {
    send(500, { errorType: e?.name ?? 'Error', errorMessage: String(e?.message ?? e) });
  }
});
server.listen(Number(port), process.env.HOST ?? '127.0.0.1', () => {
  console.log(`listening on http://${server.address().address}:${server.address().port}`);
});
