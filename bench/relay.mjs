// Relay benchmark: mcp-box's paths to a server against a raw `docker exec` stdio pipe into the
// same container, as the same uid, running the same server — interleaved round by round in one run
// (ratios of p50s, never assertions). Writes bench/results/relay.json.
//   target 1  plain JSON-RPC tools/call through the WebSocket relay (one message per text frame)
//             vs newline-delimited JSON over the raw pipe; the tiny stdlib server.   ≤ 1.3×
//             A client shares the process by default (through the shared-clients mux); "1x" is the
//             same client holding it alone (?exclusive=1) on a second copy of the server, in the same
//             rounds.
//   target 3  supervisor.callTool (the library's SDK client) vs an SDK Client over the raw pipe;
//             the tiny stdlib server.                                                   ≤ 1.1×
//   target 4  cold start with the session warm, no dependencies: add → ready vs raw exec of the
//             server + an initialize round trip.                                        ≤ 1.5×
// Also (SDK on both sides, the Node SDK fixture): the relay round trip with the SDK Client,
// 2,000 pipelined calls, an 8 MiB echo, the first start (cold npm ci) and a restart with
// unchanged dependencies.
// Knobs: RELAY_ROUNDS (1000: targets 1 and 3), RELAY_SDK_ROUNDS (300), COLD_ROUNDS (11),
// RELAY_PIPELINED (3 rounds of 2,000 calls), RELAY_BIG (3 rounds; 0 = skip).
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { createSupervisor } from '../dist/index.js';
import {
  ExecStdioTransport,
  docker,
  interleave,
  knob,
  percentile,
  pipePeer,
  rotate,
  printTargets,
  ratioTarget,
  rawEnv,
  runTag,
  sleep,
  stats,
  sweepTag,
  writeTinyServer,
  writeResults,
  wsPeer,
} from './lib/common.mjs';

const ROUNDS = knob('RELAY_ROUNDS', knob('BENCH_ROUNDS', 1000));
const SDK_ROUNDS = knob('RELAY_SDK_ROUNDS', 300);
const COLD_ROUNDS = knob('COLD_ROUNDS', 11);
const PIPELINED = knob('RELAY_PIPELINED', 3);
const BIG = knob('RELAY_BIG', 3);
const WARMUP = 50;
const tag = runTag('relay');
const benchStart = performance.now();

const folder = mkdtempSync(`${tmpdir()}/mcp-box-bench-`);
cpSync(new URL('../test/fixtures/servers/node-mcp/', import.meta.url), `${folder}/p`, {
  recursive: true,
  filter: (src) => !src.includes('node_modules'),
});
// One folder per server (no two servers' folders may overlap), each with the same tiny server.
for (const name of ['tiny', 'tinyext', 'tinyalone', 'cold']) writeTinyServer(`${folder}/${name}`);
const registry = execFileSync('npm', ['config', 'get', 'registry'], { encoding: 'utf8' }).trim();
const sup = await createSupervisor(
  {
    box: {
      memoryMb: 2048,
      allowedRoots: [tmpdir()],
      caCertsFile: '/etc/ssl/certs/ca-certificates.crt',
      install: { npmRegistry: registry },
      pingIntervalSec: 0,
    },
  },
  // listen: a relay port for clients other than the supervisor's own (the plain JSON-RPC client).
  { runtimeOptions: { tag }, configDir: tmpdir(), listen: true },
);
const results = {};
const targets = [];
let leftBehind;
try {
  const trackPhases = (name) => {
    const marks = [];
    const onStatus = (e) => e.name === name && marks.push([e.phase ?? e.state, performance.now()]);
    sup.on('status', onStatus);
    return () => {
      sup.off('status', onStatus);
      const out = {};
      for (let i = 0; i < marks.length - 1; i++)
        out[marks[i][0]] = (out[marks[i][0]] ?? 0) + (marks[i + 1][1] - marks[i][1]);
      return { total: marks.at(-1)[1] - marks[0][1], phases: out };
    };
  };
  const waitReady = async (name) => {
    while (sup.get(name).state !== 'ready') {
      if (sup.get(name).state === 'failed') throw new Error(`${name}: ${JSON.stringify(sup.get(name).error)}`);
      await sleep(2);
    }
  };
  /** Where a raw exec of `name`'s server runs: its container, its uid, its workspace. */
  const placeOf = (name, cmd) => {
    const v = sup.get(name);
    return {
      container: docker.getContainer(v.session),
      spec: { cmd, user: `${v.uid}:${v.uid}`, cwd: v.workspace, env: rawEnv(v.workspace) },
    };
  };

  const first = trackPhases('bench');
  sup.add('bench', { command: 'node', args: [`${folder}/p/server.mjs`] });
  sup.add('tiny', { command: 'node', args: [`${folder}/tiny/server.cjs`] });
  sup.add('tinyext', { command: 'node', args: [`${folder}/tinyext/server.cjs`], box: { client: 'external' } });
  sup.add('tinyalone', { command: 'node', args: [`${folder}/tinyalone/server.cjs`], box: { client: 'external' } });
  await waitReady('bench');
  results.coldStartFirst = first(); // includes npm ci (cold install)
  await waitReady('tiny');
  await waitReady('tinyext');
  await waitReady('tinyalone');

  // ── target 4: cold start (session warm, no deps) ──────────────────────────────────────────────
  // mcp-box: add → ready (stage, process start, relay, initialize, tools/list); the server is
  // removed after each round (not timed). Raw: exec of the same server in the same container as
  // the same uid + an initialize round trip, plain JSON-RPC; the process is ended (not timed).
  const tinyPlace = placeOf('tiny', ['node', 'server.cjs']);
  const cold = [];
  const coldRuns = await interleave(
    COLD_ROUNDS,
    async (i) => {
      const name = `cold${i}`;
      const done = trackPhases(name);
      sup.add(name, { command: 'node', args: [`${folder}/cold/server.cjs`] });
      await waitReady(name);
      const run = done();
      cold.push(run);
      await sup.remove(name);
      return run.total;
    },
    async () => {
      const t = performance.now();
      const peer = await pipePeer(tinyPlace.container, tinyPlace.spec);
      await peer.initialize();
      const ms = performance.now() - t;
      await peer.close();
      return ms;
    },
  );
  const phasesP50 = {};
  for (const key of Object.keys(cold[0].phases))
    phasesP50[key] = percentile(
      cold.map((c) => c.phases[key] ?? 0),
      0.5,
    );
  targets.push(
    ratioTarget(
      '4',
      'cold start, no deps: add → ready vs raw exec + initialize',
      1.5,
      coldRuns.measured,
      coldRuns.baseline,
      { phasesP50 },
    ),
  );

  // Restart with unchanged dependencies: dep_install is a fingerprint hit.
  const warm = trackPhases('bench');
  await sup.restart('bench');
  await waitReady('bench');
  results.restartWarmDeps = warm();

  // ── target 1: plain JSON-RPC tools/call, relay vs raw pipe ────────────────────────────────────
  const ext = sup.get('tinyext');
  const relayPeer = await wsPeer(ext.relay.url, sup.token);
  await relayPeer.initialize();
  const alonePeer = await wsPeer(`${sup.get('tinyalone').relay.url}?exclusive=1`, sup.token);
  await alonePeer.initialize();
  const extPlace = placeOf('tinyext', ['node', 'server.cjs']);
  const rawPeer = await pipePeer(extPlace.container, extPlace.spec);
  await rawPeer.initialize();
  for (let i = 0; i < WARMUP; i++) {
    await relayPeer.callTool('add', { a: i, b: 1 }, String(i + 1));
    await alonePeer.callTool('add', { a: i, b: 1 }, String(i + 1));
    await rawPeer.callTool('add', { a: i, b: 1 }, String(i + 1));
  }
  const [sharedTimes, aloneTimes, rawTimes] = await rotate(ROUNDS, [
    (i) => relayPeer.callTool('add', { a: i, b: 1 }, String(i + 1)),
    (i) => alonePeer.callTool('add', { a: i, b: 1 }, String(i + 1)),
    (i) => rawPeer.callTool('add', { a: i, b: 1 }, String(i + 1)),
  ]);
  const plain = { measured: sharedTimes, baseline: rawTimes };
  targets.push(
    ratioTarget(
      '1',
      'relay tools/call, plain JSON-RPC: WebSocket relay vs raw docker exec pipe',
      1.3,
      plain.measured,
      plain.baseline,
    ),
  );
  targets.push(
    ratioTarget(
      '1x',
      'the same, the client holding the process alone (?exclusive=1) vs raw docker exec pipe',
      1.3,
      aloneTimes,
      rawTimes,
    ),
  );
  await alonePeer.close();
  await relayPeer.close();
  await rawPeer.close();

  // ── target 3: supervisor.callTool vs the SDK Client over the raw pipe ──────────────────────────
  const sdkTiny = new Client({ name: 'raw', version: '1' });
  await sdkTiny.connect(new ExecStdioTransport(tinyPlace.container, tinyPlace.spec));
  for (let i = 0; i < WARMUP; i++) {
    await sup.callTool('tiny', 'add', { a: i, b: 1 });
    await sdkTiny.callTool({ name: 'add', arguments: { a: i, b: 1 } });
  }
  const check = (r, want) => {
    if (r.content?.[0]?.text !== want) throw new Error(`wrong result ${JSON.stringify(r)}`);
  };
  const lib = await interleave(
    ROUNDS,
    async (i) => check(await sup.callTool('tiny', 'add', { a: i, b: 1 }), String(i + 1)),
    async (i) => check(await sdkTiny.callTool({ name: 'add', arguments: { a: i, b: 1 } }), String(i + 1)),
  );
  targets.push(
    ratioTarget(
      '3',
      'library supervisor.callTool vs SDK Client over raw docker exec pipe',
      1.1,
      lib.measured,
      lib.baseline,
    ),
  );
  await sdkTiny.close();

  // ── SDK on both sides, the Node SDK fixture: relay (the supervisor's SDK Client) vs raw pipe ──
  const relayClient = sup.get('bench').client;
  const benchPlace = placeOf('bench', ['node', 'server.mjs']);
  const raw = new Client({ name: 'raw', version: '1' });
  await raw.connect(new ExecStdioTransport(benchPlace.container, benchPlace.spec));
  for (let i = 0; i < WARMUP; i++) {
    await relayClient.callTool({ name: 'add', arguments: { a: i, b: 1 } });
    await raw.callTool({ name: 'add', arguments: { a: i, b: 1 } });
  }
  const sdk = await interleave(
    SDK_ROUNDS,
    (i) => relayClient.callTool({ name: 'add', arguments: { a: i, b: 1 } }),
    (i) => raw.callTool({ name: 'add', arguments: { a: i, b: 1 } }),
  );
  results.sdkToolCallRoundTrip = {
    mcpBox: stats(sdk.measured),
    raw: stats(sdk.baseline),
    ratioP50: percentile(sdk.measured, 0.5) / percentile(sdk.baseline, 0.5),
  };

  // Pipelined small messages: 2,000 concurrent calls, SDK Client both ways.
  const pipelined = async (client) => {
    const t = performance.now();
    await Promise.all(
      Array.from({ length: 2000 }, (_, i) => client.callTool({ name: 'echo', arguments: { text: `m${i}` } })),
    );
    return 2000 / ((performance.now() - t) / 1000);
  };
  const tp = { mcpBox: [], raw: [] };
  for (let i = 0; i < PIPELINED; i++) {
    tp.mcpBox.push(await pipelined(relayClient));
    tp.raw.push(await pipelined(raw));
  }
  if (PIPELINED > 0)
    results.pipelinedCallsPerSec = { mcpBox: percentile(tp.mcpBox, 0.5), raw: percentile(tp.raw, 0.5) };

  // An 8 MiB text echoed both ways. (SDK 1.32 stdio servers refuse inbound lines over 10 MiB —
  // their ReadBuffer cap — so this stays under it; the relay itself carries 16 MiB, see relay.test.ts.)
  const text = 'x✓'.repeat(2 * 1024 * 1024);
  const big = { mcpBox: [], raw: [] };
  for (let i = 0; i < BIG; i++) {
    let t = performance.now();
    const a = await relayClient.callTool({ name: 'echo', arguments: { text } });
    big.mcpBox.push(performance.now() - t);
    if (a.content[0].text !== text) throw new Error('relay corrupted the big message');
    t = performance.now();
    await raw.callTool({ name: 'echo', arguments: { text } });
    big.raw.push(performance.now() - t);
  }
  if (BIG > 0)
    results.bigMessageEcho = {
      bytes: Buffer.byteLength(text),
      mcpBoxP50: percentile(big.mcpBox, 0.5),
      rawP50: percentile(big.raw, 0.5),
    };
  await raw.close();
} finally {
  await sup.close();
  rmSync(folder, { recursive: true, force: true });
  leftBehind = await sweepTag(tag);
}

const elapsedS = (performance.now() - benchStart) / 1000;
writeResults('relay', {
  tag,
  elapsedS,
  rounds: { plainAndLibrary: ROUNDS, sdk: SDK_ROUNDS, cold: COLD_ROUNDS },
  targets,
  results,
  leftBehind,
});
const f = (v) => v.toFixed(1);
const r = results;
console.log(`relay bench (${f(elapsedS)} s; ms unless noted)`);
printTargets(targets);
const s = r.sdkToolCallRoundTrip;
console.log(
  `SDK Client both sides (Node SDK fixture), ${SDK_ROUNDS} rounds: relay p50 ${s.mcpBox.p50.toFixed(2)} p99 ${s.mcpBox.p99.toFixed(2)}, raw p50 ${s.raw.p50.toFixed(2)} p99 ${s.raw.p99.toFixed(2)} ms: ${s.ratioP50.toFixed(2)}×`,
);
if (r.pipelinedCallsPerSec)
  console.log(
    `pipelined calls/s (2,000 concurrent, SDK): relay ${f(r.pipelinedCallsPerSec.mcpBox)}, raw ${f(r.pipelinedCallsPerSec.raw)}`,
  );
if (r.bigMessageEcho)
  console.log(
    `${(r.bigMessageEcho.bytes / 1048576).toFixed(0)} MiB echo both ways (SDK): relay ${f(r.bigMessageEcho.mcpBoxP50)}, raw ${f(r.bigMessageEcho.rawP50)} ms`,
  );
console.log(
  `cold start by phase (p50 ms): ${Object.entries(targets.find((t) => t.id === '4').phasesP50)
    .map(([k, v]) => `${k} ${f(v)}`)
    .join(', ')}`,
);
console.log(
  `restart with unchanged deps: ${f(r.restartWarmDeps.total)} ms: ${Object.entries(r.restartWarmDeps.phases)
    .map(([k, v]) => `${k} ${f(v)}`)
    .join(', ')}`,
);
console.log(
  `first start (cold npm ci): ${f(r.coldStartFirst.total)} ms: ${Object.entries(r.coldStartFirst.phases)
    .map(([k, v]) => `${k} ${f(v)}`)
    .join(', ')}`,
);
