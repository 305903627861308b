// REST benchmark (target 2): a tool call through a real `mcp-box serve` (child process, as a user
// runs it) — `POST /v1/servers/{name}/tools/{tool}/call` over one keep-alive HTTP connection —
// against newline-delimited JSON-RPC over a raw `docker exec` pipe into the same container, as the
// same uid, running the same tiny stdlib server. Ratio of p50s, target ≤ 3×. Also (1s) the relay
// of that serve — a second copy of the server with an external client, called with plain JSON-RPC
// over the WebSocket from the relay URL in its record — against the same raw pipe: target 1 with
// the relay in another process. And (1h) MCP Streamable HTTP: plain JSON-RPC `tools/call` POSTed to
// `/v1/servers/tiny/mcp` in one session over one keep-alive connection, its answer read from the SSE
// stream of the POST, against the same raw pipe: target ≤ 1.3×. The four are interleaved round by
// round (each round starts one further along). Writes bench/results/rest.json. Knobs: REST_ROUNDS (1000).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_SANDBOX_IMAGE } from '../dist/index.js';
import {
  apiRequest,
  deadline,
  docker,
  knob,
  pipePeer,
  printTargets,
  ratioTarget,
  rawEnv,
  rotate,
  runTag,
  sleep,
  sweepTag,
  writeTinyServer,
  writeResults,
  wsPeer,
} from './lib/common.mjs';

const ROUNDS = knob('REST_ROUNDS', 1000);
const WARMUP = 50;
const READY_TIMEOUT_MS = 120_000;
const image = process.env.BENCH_IMAGE ?? DEFAULT_SANDBOX_IMAGE;
const tag = runTag('rest');
const token = randomBytes(24).toString('base64url');
const benchStart = performance.now();

const root = mkdtempSync(join(tmpdir(), 'mcp-box-bench-rest-'));
writeTinyServer(join(root, 'tiny'));
writeTinyServer(join(root, 'tinyext'));
const configPath = join(root, 'mcp-box.json');
writeFileSync(
  configPath,
  JSON.stringify({
    mcpServers: {
      tiny: { command: 'node', args: ['server.cjs'], box: { hostPath: 'tiny' } },
      tinyext: { command: 'node', args: ['server.cjs'], box: { hostPath: 'tinyext', client: 'external' } },
    },
    box: { image, memoryMb: 1024, allowedRoots: [tmpdir()], pingIntervalSec: 0 },
    server: { host: '127.0.0.1', port: 0, token },
  }),
);
const serve = spawn(
  process.execPath,
  [fileURLToPath(new URL('../dist/cli.js', import.meta.url)), 'serve', '--config', configPath],
  {
    env: { ...process.env, MCP_BOX_TAG: tag },
    stdio: ['ignore', 'pipe', 'pipe'],
  },
);
let output = '';
const keep = (chunk) => (output = (output + chunk.toString()).slice(-64 * 1024));
serve.stdout.on('data', keep);
serve.stderr.on('data', keep);
const exited = new Promise((resolve) => serve.once('exit', (code, signal) => resolve({ code, signal })));

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
let base;
/** One request on the keep-alive agent; resolves with the status and the parsed body. */
async function request(method, path, body) {
  const { status, text } = await apiRequest({ agent, base, token }, method, path, body);
  return { status, body: JSON.parse(text) };
}
const mcpAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
let mcpSession;
/** One JSON-RPC message POSTed to the server's MCP endpoint; the JSON-RPC answer from its SSE stream. */
async function mcpPost(message) {
  const { status, headers, text } = await apiRequest(
    {
      agent: mcpAgent,
      base,
      token,
      headers: {
        Accept: 'application/json, text/event-stream',
        ...(mcpSession === undefined ? {} : { 'Mcp-Session-Id': mcpSession, 'Mcp-Protocol-Version': '2025-11-25' }),
      },
    },
    'POST',
    '/v1/servers/tiny/mcp',
    message,
  );
  if (status === 202) return undefined;
  if (status !== 200) throw new Error(`MCP POST: HTTP ${status} ${text}`);
  mcpSession ??= headers['mcp-session-id'];
  const data = text
    .split('\n')
    // An empty data line is the SDK's priming event (an id to resume from), not a message.
    .filter((l) => l.startsWith('data: ') && l.length > 'data: '.length)
    .map((l) => JSON.parse(l.slice(6)))
    .find((m) => m.id === message.id);
  if (data === undefined) throw new Error(`MCP POST: no answer in ${text}`);
  return data;
}
const mcpCall = async (i) => {
  const answer = await mcpPost({
    jsonrpc: '2.0',
    id: i + 1,
    method: 'tools/call',
    params: { name: 'add', arguments: { a: i, b: 1 } },
  });
  if (answer.result?.content?.[0]?.text !== String(i + 1)) throw new Error(`MCP call: ${JSON.stringify(answer)}`);
};

const restCall = async (i) => {
  const { status, body } = await request('POST', '/v1/servers/tiny/tools/add/call', { arguments: { a: i, b: 1 } });
  if (status !== 200 || body.content?.[0]?.text !== String(i + 1))
    throw new Error(`REST call: HTTP ${status} ${JSON.stringify(body)}`);
};

const targets = [];
let failure;
let leftBehind;
try {
  const t0 = performance.now();
  for (;;) {
    const url = /listening on (http:\/\/\S+)/.exec(output)?.[1];
    if (url !== undefined) {
      base = new URL(url);
      break;
    }
    if (serve.exitCode !== null) throw new Error(`serve exited before listening:\n${output}`);
    if (performance.now() - t0 > 30_000) throw new Error(`serve did not print where it listens:\n${output}`);
    await sleep(20);
  }
  const ready = async (name) => {
    for (;;) {
      const view = (await request('GET', `/v1/servers/${name}`)).body;
      if (view.state === 'ready') return view;
      if (view.state === 'failed') throw new Error(`${name} failed: ${JSON.stringify(view.error)}`);
      if (performance.now() - t0 > READY_TIMEOUT_MS) throw new Error(`${name} not ready: ${JSON.stringify(view)}`);
      await sleep(50);
    }
  };
  const view = await ready('tiny');
  const ext = await ready('tinyext');
  const raw = await pipePeer(docker.getContainer(view.session), {
    cmd: ['node', 'server.cjs'],
    user: `${view.uid}:${view.uid}`,
    cwd: view.workspace,
    env: rawEnv(view.workspace),
  });
  await raw.initialize();
  const relay = await wsPeer(ext.relay.url, token);
  await relay.initialize();
  await mcpPost({
    jsonrpc: '2.0',
    id: 0,
    method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'bench', version: '1' } },
  });
  await mcpPost({ jsonrpc: '2.0', method: 'notifications/initialized' });
  const rawCall = (i) => raw.callTool('add', { a: i, b: 1 }, String(i + 1));
  const relayCall = (i) => relay.callTool('add', { a: i, b: 1 }, String(i + 1));
  for (let i = 0; i < WARMUP; i++) {
    await restCall(i);
    await relayCall(i);
    await mcpCall(i);
    await rawCall(i);
  }
  const [rest, viaRelay, viaMcp, baseline] = await rotate(ROUNDS, [restCall, relayCall, mcpCall, rawCall]);
  targets.push(ratioTarget('2', 'REST tools/call (serve, keep-alive HTTP) vs raw docker exec pipe', 3, rest, baseline));
  targets.push(
    ratioTarget(
      '1s',
      "relay tools/call, plain JSON-RPC, relay in serve's process vs raw docker exec pipe",
      1.3,
      viaRelay,
      baseline,
    ),
  );
  targets.push(
    ratioTarget(
      '1h',
      'MCP Streamable HTTP tools/call (serve, one session, keep-alive) vs raw docker exec pipe',
      1.3,
      viaMcp,
      baseline,
    ),
  );
  await relay.close();
  await raw.close();
} catch (err) {
  failure = String(err?.stack ?? err);
  process.exitCode = 1;
} finally {
  agent.destroy();
  mcpAgent.destroy();
  if (serve.exitCode === null && serve.signalCode === null) {
    serve.kill('SIGTERM');
    const exit = await Promise.race([exited, deadline(45_000).then(() => null)]);
    if (exit === null) {
      serve.kill('SIGKILL');
      await exited;
    }
  }
  rmSync(root, { recursive: true, force: true });
  leftBehind = await sweepTag(tag);
}

const elapsedS = (performance.now() - benchStart) / 1000;
writeResults('rest', {
  tag,
  elapsedS,
  rounds: ROUNDS,
  targets,
  leftBehind,
  ...(failure === undefined ? {} : { failure }),
});
console.log(`rest bench (${elapsedS.toFixed(1)} s)`);
printTargets(targets);
if (failure !== undefined)
  console.error(`rest bench failed: ${failure}\n--- serve output (tail) ---\n${output.slice(-8000)}`);
