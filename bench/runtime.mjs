// Runtime benchmark: mcp-box's session/exec/process primitives against the raw Engine API doing
// the least the same job needs, measured side by side in one run (ratios, not absolute times).
// Writes bench/results/runtime.json and prints a table. Knobs: RUNTIME_ROUNDS (15).
import { createDockerRuntime, DEFAULT_SANDBOX_IMAGE } from '../dist/index.js';
import { docker, knob, runTag, sweepTag, writeResults } from './lib/common.mjs';

const ROUNDS = knob('RUNTIME_ROUNDS', knob('BENCH_ROUNDS', 15));
const tag = runTag('runtime');
const runtime = createDockerRuntime({ tag });
const image = process.env.BENCH_IMAGE ?? DEFAULT_SANDBOX_IMAGE;

const stats = (samples) => {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { n: sorted.length, p50: at(0.5), p90: at(0.9), min: sorted[0] };
};
const time = async (fn) => {
  const t = performance.now();
  await fn();
  return performance.now() - t;
};
/** Interleaves the two variants round by round so machine noise hits both alike. */
const sideBySide = async (mine, raw) => {
  const a = [];
  const b = [];
  for (let i = 0; i < ROUNDS; i++) {
    a.push(await time(mine));
    b.push(await time(raw));
  }
  return { mcpBox: stats(a), raw: stats(b) };
};

const rawExec = async (container, cmd) => {
  const exec = await container.exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true, User: '100999:100999' });
  const stream = await exec.start({ hijack: true, stdin: false });
  stream.resume();
  await new Promise((r) => stream.once('end', r));
  for (;;) {
    const info = await exec.inspect();
    if (!info.Running) return info.ExitCode;
  }
};

const results = {};
try {
  await runtime.ping();
  // 1. session create: ensureSession (create + start + hardening self-check) + remove, vs raw create + start + remove.
  results.sessionCreate = await sideBySide(
    async () => {
      const s = await runtime.ensureSession({ image, memoryMb: 256, pidsLimit: 64 });
      await s.remove();
    },
    async () => {
      const c = await docker.createContainer({
        Image: image,
        Cmd: ['sleep', 'infinity'],
        Labels: { 'mcp-box.tag': tag },
        HostConfig: { Init: true },
      });
      await c.start();
      await c.remove({ force: true });
    },
  );

  const session = await runtime.ensureSession({ image, memoryMb: 512 });
  const container = docker.getContainer(session.info.containerId);
  const identity = await session.createIdentity();

  // 2. one-shot exec of `true` as a tenant identity (wrapper + prlimit + exit-code polling) vs raw exec.
  results.execTrue = await sideBySide(
    () => session.exec({ identity, cmd: ['true'] }),
    () => rawExec(container, ['true']),
  );

  // 3. managed process start until its PID is known, then stdin EOF until exit, vs raw exec of cat with stdin.
  results.processStartStop = await sideBySide(
    async () => {
      const p = await session.startProcess({ id: 'bench', identity, cmd: ['cat'] });
      p.stdin.end();
      await p.exited;
    },
    async () => {
      const exec = await container.exec({
        Cmd: ['cat'],
        AttachStdin: true,
        AttachStdout: true,
        AttachStderr: true,
        User: '100999:100999',
      });
      const stream = await exec.start({ hijack: true, stdin: true });
      stream.resume();
      stream.end();
      await new Promise((r) => stream.once('end', r));
      while ((await exec.inspect()).Running);
    },
  );

  // 4. identity create + release (folders, leftover kill, cleanup) — no raw counterpart.
  const ids = [];
  for (let i = 0; i < ROUNDS; i++)
    ids.push(await time(async () => session.releaseIdentity(await session.createIdentity())));
  results.identityCreateRelease = { mcpBox: stats(ids) };
  await session.releaseIdentity(identity);
  await session.remove();
} finally {
  await runtime.close();
  results.leftBehind = await sweepTag(tag);
}
const { leftBehind } = results;
delete results.leftBehind;

const rows = Object.entries(results).map(([name, r]) => ({
  name,
  p50: r.mcpBox.p50,
  p90: r.mcpBox.p90,
  rawP50: r.raw?.p50,
  ratio: r.raw === undefined ? undefined : r.mcpBox.p50 / r.raw.p50,
}));
writeResults('runtime', { tag, rounds: ROUNDS, results, leftBehind });
const f = (v) => (v === undefined ? '-' : v.toFixed(1));
console.log(`runtime bench, ${ROUNDS} rounds each, interleaved (ms)`);
console.log('| operation | mcp-box p50 | mcp-box p90 | raw Engine API p50 | ratio |');
console.log('|---|---:|---:|---:|---:|');
for (const r of rows)
  console.log(
    `| ${r.name} | ${f(r.p50)} | ${f(r.p90)} | ${f(r.rawP50)} | ${r.ratio === undefined ? '-' : r.ratio.toFixed(2) + '×'} |`,
  );
