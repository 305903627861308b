// Relay benchmark (issue 4): the same SDK Client talks to the same MCP server in the same
// container, once through mcp-box (WebSocket relay) and once over a raw `docker exec` stdio pipe.
// Interleaved rounds; ratios, not absolute times. Writes bench/results/relay.json.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { PassThrough } from 'node:stream';
import Dockerode from 'dockerode';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { createSupervisor } from '../dist/index.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 200);
const docker = new Dockerode();
const percentile = (xs, q) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];

/** An SDK Transport over a hijacked `docker exec` (the baseline: no relay). */
class ExecStdioTransport {
  constructor(container, opts) {
    this.container = container;
    this.opts = opts;
  }
  async start() {
    const exec = await this.container.exec({ Cmd: this.opts.cmd, User: this.opts.user, WorkingDir: this.opts.cwd, Env: this.opts.env, AttachStdin: true, AttachStdout: true, AttachStderr: true });
    this.stream = await exec.start({ hijack: true, stdin: true });
    const stdout = new PassThrough();
    docker.modem.demuxStream(this.stream, stdout, new PassThrough().resume());
    let buffer = '';
    stdout.on('data', (chunk) => {
      buffer += chunk.toString('utf8');
      let i;
      while ((i = buffer.indexOf('\n')) !== -1) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 1);
        if (line.trim() !== '') this.onmessage?.(JSON.parse(line));
      }
    });
    this.stream.on('close', () => this.onclose?.());
  }
  async send(message) {
    if (this.stream.write(`${JSON.stringify(message)}\n`)) return;
    this.draining ??= new Promise((r) => this.stream.once('drain', () => r((this.draining = undefined))));
    await this.draining;
  }
  async close() {
    this.stream?.end();
    this.stream?.destroy();
  }
}

const folder = mkdtempSync(`${tmpdir()}/mcp-box-bench-`);
cpSync(new URL('../test/fixtures/servers/node-mcp/', import.meta.url), `${folder}/p`, { recursive: true });
// A server with no dependencies (stdlib Python), for the cold-start measure: staged alone, and also
// beside the Node server so the raw baseline can run it in a workspace that exists.
const plain = readFileSync(new URL('../test/fixtures/servers/python-mcp/server.py', import.meta.url), 'utf8')
  .replace('import mcpboxgreet\n', '')
  .replace('mcpboxgreet.greet(args["name"])', '"hi " + args["name"]');
mkdirSync(`${folder}/plain`);
writeFileSync(`${folder}/plain/plain.py`, plain);
writeFileSync(`${folder}/p/plain.py`, plain);
const registry = execFileSync('npm', ['config', 'get', 'registry'], { encoding: 'utf8' }).trim();
const sup = await createSupervisor(
  { box: { memoryMb: 2048, allowedRoots: [tmpdir()], caCertsFile: '/etc/ssl/certs/ca-certificates.crt', install: { npmRegistry: registry }, pingIntervalSec: 0 } },
  { runtimeOptions: { tag: 'bench' }, configDir: tmpdir() },
);
const results = {};
try {
  const trackPhases = (name) => {
    const marks = [];
    const onStatus = (e) => e.name === name && marks.push([e.phase ?? e.state, performance.now()]);
    sup.on('status', onStatus);
    return () => {
      sup.off('status', onStatus);
      const out = {};
      for (let i = 0; i < marks.length - 1; i++) out[marks[i][0]] = (out[marks[i][0]] ?? 0) + (marks[i + 1][1] - marks[i][1]);
      return { total: marks.at(-1)[1] - marks[0][1], phases: out };
    };
  };
  const waitReady = async (name) => {
    while (sup.get(name).state !== 'ready') {
      if (sup.get(name).state === 'failed') throw new Error(JSON.stringify(sup.get(name).error));
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const addTimed = async (name) => {
    const done = trackPhases(name);
    sup.add(name, { command: 'node', args: [`${folder}/p/server.mjs`] });
    await waitReady(name);
    return done();
  };
  results.coldStartFirst = await addTimed('bench'); // includes npm ci (cold install)
  const view = sup.get('bench');
  const container = docker.getContainer(view.session);
  const baseEnv = [`HOME=${view.workspace}/../home`, `PATH=${view.workspace}/node_modules/.bin:/usr/local/bin:/usr/bin:/bin`];
  const rawClient = async () => {
    const transport = new ExecStdioTransport(container, { cmd: ['node', 'server.mjs'], user: `${view.uid}:${view.uid}`, cwd: view.workspace, env: baseEnv });
    const client = new Client({ name: 'raw', version: '1' });
    const t0 = performance.now();
    await client.connect(transport);
    return { client, initMs: performance.now() - t0 };
  };
  let relayClient = view.client;

  // 1. Cold start (session warm, no deps): add → ready, vs raw exec + initialize of the same server.
  const addTimedPlain = async (name) => {
    const done = trackPhases(name);
    sup.add(name, { command: 'python3', args: [`${folder}/plain/plain.py`] });
    await waitReady(name);
    return done();
  };
  const rawPlain = async () => {
    const transport = new ExecStdioTransport(container, { cmd: ['python3', 'plain.py'], user: `${view.uid}:${view.uid}`, cwd: view.workspace, env: baseEnv });
    const client = new Client({ name: 'raw', version: '1' });
    const t0 = performance.now();
    await client.connect(transport);
    await client.listTools();
    const ms = performance.now() - t0;
    await client.close();
    return ms;
  };
  const cold = [];
  const rawCold = [];
  for (let i = 0; i < 7; i++) {
    const name = `cold${i}`;
    cold.push(await addTimedPlain(name));
    await sup.remove(name);
    rawCold.push(await rawPlain());
  }
  const coldTotals = cold.map((c) => c.total);
  const phaseMedians = {};
  for (const key of Object.keys(cold[0].phases)) phaseMedians[key] = percentile(cold.map((c) => c.phases[key] ?? 0), 0.5);
  results.coldStartNoDeps = { mcpBoxP50: percentile(coldTotals, 0.5), rawP50: percentile(rawCold, 0.5), phasesP50: phaseMedians };

  // 1b. Warm dependency start: restart the Node server (fingerprint unchanged) and time dep_install.
  const warm = trackPhases('bench');
  await sup.restart('bench');
  await waitReady('bench');
  results.restartWarmDeps = warm();
  relayClient = sup.get('bench').client;

  // 2. tools/call round trip, interleaved.
  const { client: raw } = await rawClient();
  const rt = { mcpBox: [], raw: [] };
  for (let i = 0; i < 20; i++) {
    await relayClient.callTool({ name: 'add', arguments: { a: i, b: 1 } });
    await raw.callTool({ name: 'add', arguments: { a: i, b: 1 } });
  }
  for (let i = 0; i < ROUNDS; i++) {
    let t = performance.now();
    await relayClient.callTool({ name: 'add', arguments: { a: i, b: 1 } });
    rt.mcpBox.push(performance.now() - t);
    t = performance.now();
    await raw.callTool({ name: 'add', arguments: { a: i, b: 1 } });
    rt.raw.push(performance.now() - t);
  }
  results.toolCallRoundTrip = {
    mcpBoxP50: percentile(rt.mcpBox, 0.5),
    mcpBoxP99: percentile(rt.mcpBox, 0.99),
    rawP50: percentile(rt.raw, 0.5),
    rawP99: percentile(rt.raw, 0.99),
  };

  // 3. Pipelined small messages: 2,000 concurrent calls.
  const pipelined = async (client) => {
    const t = performance.now();
    await Promise.all(Array.from({ length: 2000 }, (_, i) => client.callTool({ name: 'echo', arguments: { text: `m${i}` } })));
    return 2000 / ((performance.now() - t) / 1000);
  };
  const tp = { mcpBox: [], raw: [] };
  for (let i = 0; i < 3; i++) {
    tp.mcpBox.push(await pipelined(relayClient));
    tp.raw.push(await pipelined(raw));
  }
  results.pipelinedCallsPerSec = { mcpBox: percentile(tp.mcpBox, 0.5), raw: percentile(tp.raw, 0.5) };

  // 4. An 8 MiB text echoed both ways. (SDK 1.32 stdio servers refuse inbound lines over 10 MiB —
  // their ReadBuffer cap — so this stays under it; the relay itself carries 16 MiB, see relay.test.ts.)
  const text = 'x✓'.repeat(2 * 1024 * 1024);
  const big = { mcpBox: [], raw: [] };
  for (let i = 0; i < 3; i++) {
    let t = performance.now();
    const a = await relayClient.callTool({ name: 'echo', arguments: { text } });
    big.mcpBox.push(performance.now() - t);
    if (a.content[0].text !== text) throw new Error('relay corrupted the big message');
    t = performance.now();
    await raw.callTool({ name: 'echo', arguments: { text } });
    big.raw.push(performance.now() - t);
  }
  results.bigMessageEcho = { bytes: Buffer.byteLength(text), mcpBoxP50: percentile(big.mcpBox, 0.5), rawP50: percentile(big.raw, 0.5) };
  await raw.close();
} finally {
  await sup.close();
  rmSync(folder, { recursive: true, force: true });
}

mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/relay.json', JSON.stringify({ rounds: ROUNDS, at: new Date().toISOString(), results }, null, 2));
const f = (v) => v.toFixed(1);
const r = results;
console.log(`relay bench (${ROUNDS} interleaved round trips; ms unless noted)`);
console.log('| measure | mcp-box | raw docker exec | ratio |');
console.log('|---|---:|---:|---:|');
console.log(`| tools/call round trip p50 | ${f(r.toolCallRoundTrip.mcpBoxP50)} | ${f(r.toolCallRoundTrip.rawP50)} | ${(r.toolCallRoundTrip.mcpBoxP50 / r.toolCallRoundTrip.rawP50).toFixed(2)}× |`);
console.log(`| tools/call round trip p99 | ${f(r.toolCallRoundTrip.mcpBoxP99)} | ${f(r.toolCallRoundTrip.rawP99)} | ${(r.toolCallRoundTrip.mcpBoxP99 / r.toolCallRoundTrip.rawP99).toFixed(2)}× |`);
console.log(`| pipelined calls/s (2,000 concurrent) | ${f(r.pipelinedCallsPerSec.mcpBox)} | ${f(r.pipelinedCallsPerSec.raw)} | ${(r.pipelinedCallsPerSec.raw / r.pipelinedCallsPerSec.mcpBox).toFixed(2)}× slower |`);
console.log(`| ${(r.bigMessageEcho.bytes / 1048576).toFixed(0)} MiB echo, both ways | ${f(r.bigMessageEcho.mcpBoxP50)} | ${f(r.bigMessageEcho.rawP50)} | ${(r.bigMessageEcho.mcpBoxP50 / r.bigMessageEcho.rawP50).toFixed(2)}× |`);
console.log(`| cold start, no deps (add → ready, vs exec + initialize + tools/list) | ${f(r.coldStartNoDeps.mcpBoxP50)} | ${f(r.coldStartNoDeps.rawP50)} | ${(r.coldStartNoDeps.mcpBoxP50 / r.coldStartNoDeps.rawP50).toFixed(2)}× |`);
console.log(`cold start by phase (p50 ms): ${Object.entries(r.coldStartNoDeps.phasesP50).map(([k, v]) => `${k} ${f(v)}`).join(', ')}`);
console.log(`restart with unchanged deps: ${f(r.restartWarmDeps.total)} ms: ${Object.entries(r.restartWarmDeps.phases).map(([k, v]) => `${k} ${f(v)}`).join(', ')}`);
console.log(`first start (cold npm ci): ${f(r.coldStartFirst.total)} ms: ${Object.entries(r.coldStartFirst.phases).map(([k, v]) => `${k} ${f(v)}`).join(', ')}`);
