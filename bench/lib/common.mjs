// Shared by the benches (not a bench itself: scripts/bench.sh runs bench/*.mjs only).
// Statistics, interleaving, a tiny stdlib MCP server, plain JSON-RPC peers (newline-delimited
// JSON over a raw `docker exec` pipe, one message per WebSocket text frame), an SDK transport over
// the same pipe, the result files with their targets, and the leftover check by tag.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { PassThrough } from 'node:stream';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import Dockerode from 'dockerode';
import WebSocket from 'ws';

export const docker = new Dockerode();

export const percentile = (xs, q) =>
  xs.length === 0 ? NaN : [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];
export const stats = (xs) => ({
  n: xs.length,
  p50: percentile(xs, 0.5),
  p99: percentile(xs, 0.99),
  min: percentile(xs, 0),
  max: percentile(xs, 1),
});
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** A sleep that does not keep the process alive (for deadlines raced against something else). */
export const deadline = (ms) => new Promise((r) => setTimeout(r, ms).unref());

/** A number from the environment (the bench's knobs), or the default. */
export const knob = (name, fallback) => {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got ${JSON.stringify(v)}`);
  return n;
};

/** A label for this run's containers and volumes (mcp-box.tag=…), unique per bench run. */
export const runTag = (bench) => `bench-${bench}-${randomBytes(4).toString('hex')}`;

/**
 * Times `measured` and `baseline` round by round in the same run, alternating which goes first so
 * that neither always runs on a warmer cache; machine noise hits both alike. A function that
 * returns a number gives its own sample (ms: it timed only part of what it did); otherwise the
 * sample is the time it took. Returns the samples.
 */
export async function interleave(rounds, measured, baseline) {
  const [a, b] = await rotate(rounds, [measured, baseline]);
  return { measured: a, baseline: b };
}

/** The same for any number of variants: each round runs all of them, starting one further along. */
export async function rotate(rounds, fns) {
  const out = fns.map(() => []);
  for (let i = 0; i < rounds; i++) {
    for (let k = 0; k < fns.length; k++) {
      const j = (i + k) % fns.length;
      const t = performance.now();
      const own = await fns[j](i);
      out[j].push(typeof own === 'number' ? own : performance.now() - t);
    }
  }
  return out;
}

/** Forces a full GC (for RSS readings), without needing --expose-gc on the command line. */
export function collectGarbage() {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc');
  gc();
  gc();
}

// ── a tiny MCP server: Node stdlib only, nothing to install ─────────────────────────────────────

/** Tools: echo {text}, add {a,b}. Answers initialize, ping, tools/list, tools/call; ignores notifications. */
export const TINY_SERVER_SOURCE = `'use strict';
let buffer = '';
const send = (m) => process.stdout.write(JSON.stringify(m) + '\\n');
const text = (t) => ({ content: [{ type: 'text', text: t }] });
const TOOLS = [
  { name: 'echo', inputSchema: { type: 'object', properties: { text: { type: 'string' } } } },
  { name: 'add', inputSchema: { type: 'object', properties: { a: { type: 'number' }, b: { type: 'number' } } } },
];
function handle(msg) {
  if (msg.id === undefined || msg.id === null) return;
  const p = msg.params || {};
  const reply = (result) => send({ jsonrpc: '2.0', id: msg.id, result });
  if (msg.method === 'initialize') return reply({ protocolVersion: p.protocolVersion || '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'tiny', version: '1.0' } });
  if (msg.method === 'ping') return reply({});
  if (msg.method === 'tools/list') return reply({ tools: TOOLS });
  if (msg.method === 'tools/call') {
    const a = p.arguments || {};
    if (p.name === 'echo') return reply(text(String(a.text)));
    if (p.name === 'add') return reply(text(String(a.a + a.b)));
    return reply(Object.assign(text('no tool ' + p.name), { isError: true }));
  }
  send({ jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: 'no method ' + msg.method } });
}
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  buffer += chunk;
  let i;
  while ((i = buffer.indexOf('\\n')) !== -1) {
    const line = buffer.slice(0, i);
    buffer = buffer.slice(i + 1);
    if (line.trim() === '') continue;
    let msg;
    try {
      msg = JSON.parse(line);
    } catch {
      continue;
    }
    handle(msg);
  }
});
process.stdin.on('end', () => process.exit(0));
`;

/** Writes the tiny server to `<folder>/server.cjs` and returns that path. */
export function writeTinyServer(folder) {
  mkdirSync(folder, { recursive: true });
  writeFileSync(`${folder}/server.cjs`, TINY_SERVER_SOURCE);
  return `${folder}/server.cjs`;
}

// ── plain JSON-RPC ──────────────────────────────────────────────────────────────────────────────

const REQUEST_TIMEOUT_MS = 30_000;

/** Requests by id over any message channel: `send(object)` out, `receive(object)` in. */
export class RpcPeer {
  constructor(send) {
    this.sendMessage = send;
    this.nextId = 1;
    this.pending = new Map();
  }
  request(method, params) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      // A bench never hangs on a lost answer (both sides pay the same timer).
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${method}: no answer within ${REQUEST_TIMEOUT_MS} ms`));
      }, REQUEST_TIMEOUT_MS).unref();
      this.pending.set(id, { resolve, reject, timer });
      this.sendMessage({ jsonrpc: '2.0', id, method, params });
    });
  }
  notify(method, params) {
    this.sendMessage({ jsonrpc: '2.0', method, ...(params === undefined ? {} : { params }) });
  }
  receive(message) {
    const waiter = this.pending.get(message.id);
    if (waiter === undefined) return;
    this.pending.delete(message.id);
    clearTimeout(waiter.timer);
    if (message.error !== undefined)
      waiter.reject(new Error(`JSON-RPC error ${message.error.code}: ${message.error.message}`));
    else waiter.resolve(message.result);
  }
  failAll(err) {
    for (const w of this.pending.values()) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.pending.clear();
  }
  /** initialize + notifications/initialized; resolves with the server's initialize result. */
  async initialize() {
    const result = await this.request('initialize', {
      protocolVersion: '2025-06-18',
      capabilities: {},
      clientInfo: { name: 'bench', version: '1' },
    });
    this.notify('notifications/initialized');
    return result;
  }
  /** tools/call; checks the text of the answer when `want` is given. */
  async callTool(name, args, want) {
    const result = await this.request('tools/call', { name, arguments: args });
    if (want !== undefined && result?.content?.[0]?.text !== want)
      throw new Error(`tools/call ${name}: wrong result ${JSON.stringify(result)}`);
    return result;
  }
}

/** Calls `onLine(buffer)` for each newline-terminated line of a byte stream (a `\r` before `\n` dropped). */
function splitLines(stream, onLine) {
  let parts = [];
  stream.on('data', (chunk) => {
    let start = 0;
    let i;
    while ((i = chunk.indexOf(10, start)) !== -1) {
      parts.push(chunk.subarray(start, i));
      const line = parts.length === 1 ? parts[0] : Buffer.concat(parts);
      parts = [];
      start = i + 1;
      const end = line.length > 0 && line[line.length - 1] === 13 ? line.length - 1 : line.length;
      if (end > 0) onLine(line.subarray(0, end));
    }
    if (start < chunk.length) parts.push(chunk.subarray(start));
  });
}

/**
 * The baseline: a raw hijacked `docker exec` of `cmd` into `container` as `user`, no relay.
 * Resolves once the exec is attached; `exited` resolves when its stream ends.
 */
export async function execPipe(container, { cmd, user, cwd, env }) {
  const exec = await container.exec({
    Cmd: cmd,
    User: user,
    WorkingDir: cwd,
    Env: env,
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
  });
  const stream = await exec.start({ hijack: true, stdin: true });
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let stderrText = '';
  stderr.on('data', (c) => (stderrText = (stderrText + c.toString('utf8')).slice(-4096)));
  docker.modem.demuxStream(stream, stdout, stderr);
  const exited = new Promise((r) => stream.once('close', r));
  return {
    stream,
    stdout,
    exited,
    stderr: () => stderrText,
    write: (line) => stream.write(line),
    close: async () => {
      stream.end();
      await Promise.race([exited, deadline(2000)]);
      stream.destroy();
    },
  };
}

/** A plain JSON-RPC peer over a raw `docker exec` pipe. */
export async function pipePeer(container, spec) {
  const pipe = await execPipe(container, spec);
  const peer = new RpcPeer((m) => pipe.write(`${JSON.stringify(m)}\n`));
  splitLines(pipe.stdout, (line) => peer.receive(JSON.parse(line.toString('utf8'))));
  pipe.exited.then(() => peer.failAll(new Error(`the raw pipe closed; stderr: ${pipe.stderr()}`)));
  peer.close = pipe.close;
  return peer;
}

/** A plain JSON-RPC peer over mcp-box's relay WebSocket (subprotocol mcp, bearer token). */
export function wsPeer(url, token) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, 'mcp', {
      headers: { Authorization: `Bearer ${token}` },
      perMessageDeflate: false,
      maxPayload: 17 * 1024 * 1024,
    });
    const peer = new RpcPeer((m) => ws.send(JSON.stringify(m)));
    ws.on('message', (data, isBinary) => {
      if (!isBinary) peer.receive(JSON.parse(data.toString('utf8')));
    });
    ws.once('open', () => resolve(peer));
    ws.once('error', reject);
    ws.on('close', (code, reason) => peer.failAll(new Error(`relay closed ${code} ${reason}`)));
    peer.close = () =>
      new Promise((r) => {
        if (ws.readyState === WebSocket.CLOSED) return r();
        ws.once('close', r);
        ws.close(1000);
      });
  });
}

/** An SDK Transport over a raw `docker exec` pipe (the baseline for SDK clients: no relay). */
export class ExecStdioTransport {
  constructor(container, spec) {
    this.container = container;
    this.spec = spec;
  }
  async start() {
    this.pipe = await execPipe(this.container, this.spec);
    splitLines(this.pipe.stdout, (line) => this.onmessage?.(JSON.parse(line.toString('utf8'))));
    this.pipe.exited.then(() => this.onclose?.());
  }
  async send(message) {
    if (this.pipe.write(`${JSON.stringify(message)}\n`)) return;
    this.draining ??= new Promise((r) => this.pipe.stream.once('drain', () => r((this.draining = undefined))));
    await this.draining;
  }
  async close() {
    await this.pipe?.close();
  }
}

/** The environment a raw exec gets: the server's HOME beside its workspace, the sandbox's PATH. */
export const rawEnv = (workspace) => [
  `HOME=${workspace}/../home`,
  `PATH=${workspace}/node_modules/.bin:/usr/local/bin:/usr/bin:/bin`,
];

// ── results ─────────────────────────────────────────────────────────────────────────────────────

/**
 * A target: `measured` against `baseline` (sample arrays, ms), ratio of p50s, pass when at or
 * under `limit`. Never asserts: a miss is reported.
 */
export function ratioTarget(id, title, limit, measured, baseline, extra = {}) {
  const m = stats(measured);
  const b = stats(baseline);
  const ratio = m.p50 / b.p50;
  return { id, title, kind: 'ratio', limit, ratio, measured: m, baseline: b, pass: ratio <= limit, ...extra };
}

/** A reported value (with a goal when `limit` is a number). */
export function valueTarget(id, title, value, unit, limit, extra = {}) {
  return {
    id,
    title,
    kind: 'value',
    value,
    unit,
    limit,
    pass: typeof limit === 'number' ? value <= limit : null,
    ...extra,
  };
}

/** Writes bench/results/<name>.json with the time of the run and its targets. */
export function writeResults(name, body) {
  const dir = new URL('../results/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    new URL(`${name}.json`, dir),
    `${JSON.stringify({ bench: name, at: new Date().toISOString(), ...body }, null, 2)}\n`,
  );
}

const ms = (v) => (Number.isFinite(v) ? (v >= 100 ? v.toFixed(0) : v.toFixed(2)) : '-');
/** One line per target, as the bench's own output. */
export function printTargets(targets) {
  for (const t of targets) {
    const verdict = t.pass === null ? '' : t.pass ? 'pass' : 'MISS';
    if (t.kind === 'ratio') {
      console.log(
        `target ${t.id} ${t.title}: ${t.ratio.toFixed(2)}× (≤ ${t.limit}×) ${verdict} — mcp-box p50 ${ms(t.measured.p50)} p99 ${ms(t.measured.p99)} ms; baseline p50 ${ms(t.baseline.p50)} p99 ${ms(t.baseline.p99)} ms (n ${t.measured.n}/${t.baseline.n})`,
      );
    } else {
      console.log(
        `target ${t.id} ${t.title}: ${ms(t.value)} ${t.unit}${typeof t.limit === 'number' ? ` (goal ≤ ${t.limit} ${t.unit}) ${verdict}` : ''}`,
      );
    }
  }
}

/** Removes whatever this run's tag left behind; returns what was found (it should be nothing). */
export async function sweepTag(tag) {
  const filters = { label: [`mcp-box.tag=${tag}`] };
  const containers = await docker.listContainers({ all: true, filters }).catch(() => []);
  const volumes = (await docker.listVolumes({ filters }).catch(() => ({ Volumes: [] }))).Volumes ?? [];
  for (const c of containers)
    await docker
      .getContainer(c.Id)
      .remove({ force: true })
      .catch(() => {});
  for (const v of volumes)
    await docker
      .getVolume(v.Name)
      .remove({ force: true })
      .catch(() => {});
  const left = { containers: containers.map((c) => c.Names[0]), volumes: volumes.map((v) => v.Name) };
  if (containers.length + volumes.length > 0)
    console.log(`tag ${tag}: removed what the run left behind: ${JSON.stringify(left)}`);
  return left;
}

/**
 * One request to a serve's API on a keep-alive `agent`, with a bearer token; resolves with the
 * status and the body text. `timeoutMs`: the socket is destroyed (code CLIENT_TIMEOUT) after it.
 */
export function apiRequest({ agent, base, token, headers = {} }, method, path, body, timeoutMs = 30_000) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      {
        agent,
        host: base.hostname,
        port: base.port,
        method,
        path,
        headers: {
          Authorization: `Bearer ${token}`,
          ...headers,
          ...(payload === undefined
            ? {}
            : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) }),
        },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () =>
      req.destroy(Object.assign(new Error('client timeout'), { code: 'CLIENT_TIMEOUT' })),
    );
    req.on('error', reject);
    req.end(payload);
  });
}
