// Recovery benchmark (issue 8): how long a `docker kill` of the session costs, against a warm
// restart of the same servers in the live session, interleaved round by round (ratios, not
// absolute times). Two servers share the session: the Node fixture (installed dependencies) and a
// stdlib Python server. Writes bench/results/recovery.json. Knobs: RECOVERY_ROUNDS (7).
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { createSupervisor } from '../dist/index.js';
import { docker, knob, percentile, printTargets, ratioTarget, runTag, sweepTag, writeResults } from './lib/common.mjs';

const ROUNDS = knob('RECOVERY_ROUNDS', knob('BENCH_ROUNDS', 7));
const NAMES = ['node', 'plain'];
const tag = runTag('recovery');

const folder = mkdtempSync(`${tmpdir()}/mcp-box-bench-recovery-`);
cpSync(new URL('../test/fixtures/servers/node-mcp/', import.meta.url), `${folder}/node`, { recursive: true });
mkdirSync(`${folder}/plain`);
const plain = readFileSync(new URL('../test/fixtures/servers/python-mcp/server.py', import.meta.url), 'utf8')
  .replace('import mcpboxgreet\n', '')
  .replace('mcpboxgreet.greet(args["name"])', '"hi " + args["name"]');
writeFileSync(`${folder}/plain/plain.py`, plain);
const registry = execFileSync('npm', ['config', 'get', 'registry'], { encoding: 'utf8' }).trim();

const sup = await createSupervisor(
  {
    box: {
      memoryMb: 1024,
      allowedRoots: [tmpdir()],
      caCertsFile: '/etc/ssl/certs/ca-certificates.crt',
      install: { npmRegistry: registry },
      pingIntervalSec: 0,
      restart: { backoffInitialMs: 100, backoffMaxMs: 200, maxRestarts: 1000 },
    },
  },
  { runtimeOptions: { tag }, configDir: tmpdir() },
);
const allReady = async (notIn) => {
  for (;;) {
    const views = NAMES.map((n) => sup.get(n));
    const bad = views.find((v) => v.state === 'failed');
    if (bad !== undefined) throw new Error(`${bad.name} failed: ${JSON.stringify(bad.error)}`);
    if (views.every((v) => v.state === 'ready' && v.session !== notIn)) return;
    await new Promise((r) => setTimeout(r, 5));
  }
};
let results;
let leftBehind;
const targets = [];
try {
  sup.add('node', { command: 'node', args: [`${folder}/node/server.mjs`] });
  sup.add('plain', { command: 'python3', args: [`${folder}/plain/plain.py`] });
  await allReady();
  const warm = [];
  const recovery = [];
  let reinstalls = 0;
  for (let i = 0; i < ROUNDS; i++) {
    let t0 = performance.now();
    await Promise.all(NAMES.map((n) => sup.restart(n)));
    await allReady();
    warm.push(performance.now() - t0);

    const session = sup.get('node').session;
    const seq = sup.logs('node', 0, 5000).next;
    t0 = performance.now();
    await docker.getContainer(session).kill();
    await allReady(session);
    recovery.push(performance.now() - t0);
    if (sup.logs('node', seq, 5000).lines.some((l) => /installed (node|python)/.test(l.text))) reinstalls++;
  }
  results = {
    rounds: ROUNDS,
    warmRestart: { p50: percentile(warm, 0.5), p99: percentile(warm, 0.99) },
    killRecovery: { p50: percentile(recovery, 0.5), p99: percentile(recovery, 0.99) },
    ratioP50: percentile(recovery, 0.5) / percentile(warm, 0.5),
    reinstallsAfterKill: reinstalls,
  };
  targets.push(ratioTarget('R', 'recovery: docker kill → both ready vs warm restart of both', 2, recovery, warm));
} finally {
  await sup.close();
  rmSync(folder, { recursive: true, force: true });
  leftBehind = await sweepTag(tag);
}
writeResults('recovery', { tag, targets, ...results, leftBehind });
const ms = (x) => `${Math.round(x)} ms`;
console.log(`warm restart of 2 servers      p50 ${ms(results.warmRestart.p50)}  p99 ${ms(results.warmRestart.p99)}`);
console.log(`docker kill → both ready again p50 ${ms(results.killRecovery.p50)}  p99 ${ms(results.killRecovery.p99)}`);
printTargets(targets);
console.log(`reinstalls after a kill: ${results.reinstallsAfterKill}/${ROUNDS}`);
