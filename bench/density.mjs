// Density benchmark (target 5): DENSITY_SERVERS (100) idle servers in one session, in process
// (createSupervisor, as the library runs). The servers are the tiny stdlib Node server, one folder
// each; one of them, the probe, has an external client and is called with plain JSON-RPC over its
// relay WebSocket; the others are ordinary idle servers (the supervisor's own client, default ping
// and disk watch). Measures in blocks: probe only, then (DENSITY_CYCLES times) all running, then
// probe only again (the others stopped; a next cycle starts them again):
//   - tools/call p50/p99 of the probe with all running vs with 1 running     target ≤ 1.2×
//   - the supervisor's RSS per idle server: (RSS all running − RSS 1 running) / (N − 1), after a
//     full GC, both read in this process                                     goal ≤ 2 MiB
//   - time to bring all N to ready (the probe first, which creates the session, then the other
//     N − 1 added at once), and to start the N − 1 again after a stop (workspaces kept)
// Writes bench/results/density.json. Knobs: DENSITY_SERVERS (100), DENSITY_ROUNDS (500 calls per
// block), DENSITY_CYCLES (1), DENSITY_SETTLE_MS (2000: quiet time before each block).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createSupervisor } from '../dist/index.js';
import {
  collectGarbage,
  knob,
  printTargets,
  ratioTarget,
  runTag,
  sleep,
  stats,
  sweepTag,
  valueTarget,
  writeTinyServer,
  writeResults,
  wsPeer,
} from './lib/common.mjs';

const SERVERS = knob('DENSITY_SERVERS', 100);
const ROUNDS = knob('DENSITY_ROUNDS', 500);
const CYCLES = Math.max(1, knob('DENSITY_CYCLES', 1));
const SETTLE_MS = knob('DENSITY_SETTLE_MS', 2000);
const WARMUP = 20;
const MiB = 1024 * 1024;
const tag = runTag('density');
const benchStart = performance.now();

const folder = mkdtempSync(`${tmpdir()}/mcp-box-bench-density-`);
const idle = Array.from({ length: SERVERS - 1 }, (_, i) => `s${i}`);
for (const name of ['probe', ...idle]) writeTinyServer(`${folder}/${name}`);
// Big enough for 100 Node processes (~40 MiB and ~11 threads each) and their wrappers.
const sup = await createSupervisor(
  {
    box: {
      memoryMb: Math.max(1024, SERVERS * 64),
      pidsLimit: Math.max(256, SERVERS * 32),
      cpus: 2,
      allowedRoots: [tmpdir()],
      startupTimeoutSec: 300,
    },
  },
  // listen: a relay port for the probe's external client.
  { runtimeOptions: { tag }, configDir: tmpdir(), listen: true },
);

const rss = async () => {
  collectGarbage();
  await sleep(100);
  collectGarbage();
  const m = process.memoryUsage();
  return { rssMiB: m.rss / MiB, heapUsedMiB: m.heapUsed / MiB };
};
const READY_TIMEOUT_MS = 300_000;
/** Waits until every one of `names` is ready; shows progress every 5 s; fails on a failed one or after 5 minutes. */
const waitReady = async (names) => {
  const t0 = performance.now();
  let shown = t0;
  for (;;) {
    const byState = {};
    for (const n of names) {
      const v = sup.get(n);
      if (v.state === 'failed') throw new Error(`${n} failed: ${JSON.stringify(v.error)}`);
      const key = v.state === 'starting' ? `starting/${v.phase}` : v.state;
      byState[key] = (byState[key] ?? 0) + 1;
    }
    if (byState.ready === names.length) return;
    const now = performance.now();
    if (now - t0 > READY_TIMEOUT_MS)
      throw new Error(`not ready after ${READY_TIMEOUT_MS} ms: ${JSON.stringify(byState)}`);
    if (now - shown > 5000) {
      shown = now;
      console.log(`density: waiting ${((now - t0) / 1000).toFixed(0)} s: ${JSON.stringify(byState)}`);
    }
    await sleep(20);
  }
};

const targets = [];
const results = { servers: SERVERS, rounds: ROUNDS, cycles: CYCLES, blocks: [], memory: [], readyMs: {} };
let leftBehind;
try {
  let t = performance.now();
  sup.add('probe', { command: 'node', args: [`${folder}/probe/server.cjs`], box: { client: 'external' } });
  await waitReady(['probe']);
  results.readyMs.probeWithSessionCreate = performance.now() - t;
  const probe = await wsPeer(sup.get('probe').relay.url, sup.token);
  await probe.initialize();
  for (let i = 0; i < WARMUP; i++) await probe.callTool('add', { a: i, b: 1 }, String(i + 1));

  const block = async (running) => {
    await sleep(SETTLE_MS);
    const samples = [];
    for (let i = 0; i < ROUNDS; i++) {
      const s = performance.now();
      await probe.callTool('add', { a: i, b: 1 }, String(i + 1));
      samples.push(performance.now() - s);
    }
    const mem = await rss();
    results.blocks.push({ running, ...stats(samples) });
    results.memory.push({ running, ...mem });
    console.log(
      `density: ${running} running: p50 ${stats(samples).p50.toFixed(2)} ms, p99 ${stats(samples).p99.toFixed(2)} ms, RSS ${mem.rssMiB.toFixed(1)} MiB`,
    );
    return { samples, mem };
  };

  const one = [];
  const all = [];
  const first = await block(1);
  one.push(...first.samples);
  const rssOne = first.mem.rssMiB;
  let rssAll;
  for (let c = 0; c < CYCLES; c++) {
    t = performance.now();
    if (c === 0) for (const n of idle) sup.add(n, { command: 'node', args: [`${folder}/${n}/server.cjs`] });
    else for (const n of idle) sup.start(n);
    await waitReady(idle);
    results.readyMs[c === 0 ? 'othersAdded' : `othersStartedAgain${c}`] = performance.now() - t;
    const b = await block(SERVERS);
    all.push(...b.samples);
    rssAll ??= b.mem.rssMiB;
    t = performance.now();
    await Promise.all(idle.map((n) => sup.stop(n)));
    results.stopMs = [...(results.stopMs ?? []), performance.now() - t];
    const a = await block(1);
    one.push(...a.samples);
  }
  results.readyMs.allServers = results.readyMs.probeWithSessionCreate + results.readyMs.othersAdded;
  targets.push(
    ratioTarget(
      '5a',
      `density: probe tools/call with ${SERVERS} running vs 1 running (plain JSON-RPC over the relay)`,
      1.2,
      all,
      one,
    ),
  );
  targets.push(
    valueTarget('5b', 'density: supervisor RSS per idle server', (rssAll - rssOne) / (SERVERS - 1), 'MiB', 2, {
      rssOneMiB: rssOne,
      rssAllMiB: rssAll,
    }),
  );
  targets.push(
    valueTarget('5c', `density: time to bring all ${SERVERS} to ready`, results.readyMs.allServers, 'ms', null, {
      readyMs: results.readyMs,
    }),
  );
  await probe.close();
} finally {
  const closing = performance.now();
  await sup.close();
  results.closeMs = performance.now() - closing;
  rmSync(folder, { recursive: true, force: true });
  leftBehind = await sweepTag(tag);
}

const elapsedS = (performance.now() - benchStart) / 1000;
writeResults('density', { tag, elapsedS, targets, results, leftBehind });
console.log(`density bench (${elapsedS.toFixed(1)} s)`);
printTargets(targets);
console.log(
  `stop of the others (ms): ${(results.stopMs ?? []).map((v) => v.toFixed(0)).join(', ')}; close ${results.closeMs?.toFixed(0)} ms`,
);
console.log(
  `ready times (ms): ${Object.entries(results.readyMs)
    .map(([k, v]) => `${k} ${v.toFixed(0)}`)
    .join(', ')}`,
);
