// Load benchmark (issue 8): a real `mcp-box serve` (child process, as a user runs it) with 10 ready
// servers, under 200 concurrent REST tool calls spread over them (each loop issues its next call
// when the previous one answers) and 20 SSE clients on /v1/events, one of which never reads its
// socket, for LOAD_SECONDS (30). An 11th server (`cat`, external client) is restarted every
// LOAD_CHURN_MS (2000; 0 = off) so that events flow while the load runs.
// Measures: calls, throughput, latency p50/p99, errors by kind, serve's RSS before/during/after,
// serve's event-loop lag (its own /metrics) and the bench's. Then checks that serve still answers
// /healthz quickly, every server is still ready and the reading SSE clients got events; SIGTERMs
// serve and checks no container or volume with this run's tag is left. 127.0.0.1 traffic only
// (the servers' npm ci aside). Writes bench/results/load.json; exits 1 when a check fails (times
// are reported as observations, never checked).
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import Dockerode from 'dockerode';
import { DEFAULT_SANDBOX_IMAGE } from '../dist/index.js';
import { apiRequest } from './lib/common.mjs';

const LOAD_SECONDS = Number(process.env.LOAD_SECONDS ?? 30);
const CHURN_MS = Number(process.env.LOAD_CHURN_MS ?? 2000);
const SERVERS = 10;
const CONCURRENCY = 200;
const SSE_CLIENTS = 20;
const CALL_TIMEOUT_MS = 30_000;
const READY_TIMEOUT_MS = 300_000;
const LOOP_RESOLUTION_MS = 10;
const image = process.env.BENCH_IMAGE ?? DEFAULT_SANDBOX_IMAGE;
const tag = `bench-load-${randomBytes(4).toString('hex')}`;
const token = randomBytes(24).toString('base64url');
const docker = new Dockerode();
const percentile = (xs, q) =>
  xs.length === 0 ? NaN : [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];
const bump = (map, key) => (map[key] = (map[key] ?? 0) + 1);

/** CPU time (user + system) a process has used, in ms, from /proc/<pid>/stat. */
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
function cpuMsOf(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
}

/** Busy CPU time of the whole machine (all cores), in ms, from /proc/stat. */
function machineBusyMs() {
  const [, ...ticks] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = ticks;
  return ((user + nice + system + irq + softirq + steal) * 1000) / CLK_TCK;
}

/** CPU time of the engine's processes (dockerd, containerd, the shims that copy exec stdio), in ms. */
function engineCpuMs() {
  let total = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (/^(dockerd|containerd)/.test(readFileSync(`/proc/${pid}/comm`, 'utf8'))) total += cpuMsOf(pid);
    } catch {
      // the process is gone
    }
  }
  return total;
}

/** CPU time of this run's sandbox containers (the 10 MCP server processes), in ms. */
async function sandboxCpuMs() {
  let total = 0;
  for (const c of await docker.listContainers({ filters: { label: [`mcp-box.tag=${tag}`] } })) {
    const stats = await docker.getContainer(c.Id).stats({ stream: false });
    total += stats.cpu_stats.cpu_usage.total_usage / 1e6;
  }
  return total;
}

/** VmRSS and VmHWM (peak) of a process, in MiB. */
function memoryOf(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
  return { rssMiB: kb('VmRSS') / 1024, hwmMiB: kb('VmHWM') / 1024 };
}

// ── setup: 10 copies of the Node fixture, a config with a fixed token and port 0 ─────────────────
const root = mkdtempSync(join(tmpdir(), 'mcp-box-bench-load-'));
const fixture = fileURLToPath(new URL('../test/fixtures/servers/node-mcp/', import.meta.url));
const names = Array.from({ length: SERVERS }, (_, i) => `s${i}`);
for (const name of names)
  cpSync(fixture, join(root, name), { recursive: true, filter: (src) => !src.includes('node_modules') });
const registry = execFileSync('npm', ['config', 'get', 'registry'], { encoding: 'utf8' }).trim();
const configPath = join(root, 'mcp-box.json');
const mcpServers = Object.fromEntries(
  names.map((name) => [name, { command: 'node', args: ['server.mjs'], box: { hostPath: name } }]),
);
if (CHURN_MS > 0) mcpServers.churn = { command: 'cat', box: { client: 'external' } };
writeFileSync(
  configPath,
  JSON.stringify({
    mcpServers,
    box: {
      image,
      cpus: 2,
      memoryMb: 3072,
      pidsLimit: 1024,
      allowedRoots: [tmpdir()],
      caCertsFile: '/etc/ssl/certs/ca-certificates.crt',
      install: { npmRegistry: registry },
      startupTimeoutSec: 300,
    },
    server: { host: '127.0.0.1', port: 0, token },
  }),
);

// LOAD_CPU_PROF=<dir> writes a V8 CPU profile of serve there when it exits.
const profile =
  process.env.LOAD_CPU_PROF === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${process.env.LOAD_CPU_PROF}`];
const serve = spawn(
  process.execPath,
  [...profile, fileURLToPath(new URL('../dist/cli.js', import.meta.url)), 'serve', '--config', configPath],
  {
    env: { ...process.env, MCP_BOX_TAG: tag },
    stdio: ['ignore', 'pipe', 'pipe'],
  },
);
let output = '';
const keep = (chunk) => (output = (output + chunk.toString()).slice(-256 * 1024));
serve.stdout.on('data', keep);
serve.stderr.on('data', keep);
const exited = new Promise((resolve) => serve.once('exit', (code, signal) => resolve({ code, signal })));
// Bounded even if something below hangs: the watchdog kills serve and ends the bench.
const watchdog = setTimeout(
  () => {
    console.error('load bench: watchdog fired, killing serve');
    serve.kill('SIGKILL');
    process.exit(2);
  },
  READY_TIMEOUT_MS + LOAD_SECONDS * 1000 + 180_000,
);
watchdog.unref();

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
let base;

/** One request on the shared keep-alive agent; resolves with the status and the body text. */
const request = (method, path, body, timeoutMs = CALL_TIMEOUT_MS) =>
  apiRequest({ agent, base, token }, method, path, body, timeoutMs);
const getJson = async (path) => JSON.parse((await request('GET', path)).text);

async function scrapeLag() {
  const text = (await request('GET', '/metrics')).text;
  const value = (re) => {
    const m = re.exec(text);
    return m === null ? null : Number(m[1]) * 1000;
  };
  return {
    p50Ms: value(/^mcp_box_event_loop_lag_seconds\{quantile="0.5"\} (\S+)$/m),
    p99Ms: value(/^mcp_box_event_loop_lag_seconds\{quantile="0.99"\} (\S+)$/m),
    maxMs: value(/^mcp_box_event_loop_lag_max_seconds (\S+)$/m),
  };
}

/** An SSE client on /v1/events. A reader counts the events it parses; a non-reader pauses the
 * response at once and never consumes its socket. */
function openSse(index, read) {
  return new Promise((resolve, reject) => {
    const req = http.get(
      {
        agent,
        host: base.hostname,
        port: base.port,
        path: '/v1/events',
        headers: { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' },
      },
      (res) => {
        if (res.statusCode !== 200) return reject(new Error(`SSE ${index}: HTTP ${res.statusCode}`));
        const client = { index, read, req, res, events: 0, eventsDuringLoad: 0, lastId: 0, closed: false, buffer: '' };
        res.on('close', () => (client.closed = true));
        res.on('error', () => (client.closed = true));
        res.setEncoding('utf8');
        client.consume = () =>
          res.on('data', (chunk) => {
            client.buffer += chunk;
            let end;
            while ((end = client.buffer.indexOf('\n\n')) !== -1) {
              const block = client.buffer.slice(0, end);
              client.buffer = client.buffer.slice(end + 2);
              const id = /^id: (\d+)$/m.exec(block);
              if (id === null) continue;
              client.events++;
              client.lastId = Number(id[1]);
              if (loadActive) client.eventsDuringLoad++;
            }
          });
        if (read) client.consume();
        else res.pause();
        resolve(client);
      },
    );
    req.on('error', reject);
  });
}

const results = {
  at: new Date().toISOString(),
  machine: { cpus: cpus().length, loadavgAtStart: loadavg() },
  loadSeconds: LOAD_SECONDS,
  servers: SERVERS,
  concurrency: CONCURRENCY,
  sseClients: SSE_CLIENTS,
  churnMs: CHURN_MS,
  tag,
};
const checks = {};
const observations = {};
let loadActive = false;
let sse = [];
try {
  // ── start serve and wait until every server is ready ──────────────────────────────────────────
  const startedAt = performance.now();
  for (;;) {
    const url = /listening on (http:\/\/\S+)/.exec(output)?.[1];
    if (url !== undefined) {
      base = new URL(url);
      break;
    }
    if (serve.exitCode !== null) throw new Error(`serve exited before listening:\n${output}`);
    if (performance.now() - startedAt > 30_000) throw new Error(`serve did not print where it listens:\n${output}`);
    await delay(50);
  }
  const expected = [...names, ...(CHURN_MS > 0 ? ['churn'] : [])];
  for (;;) {
    const { servers } = await getJson('/v1/servers');
    const failed = servers.filter((s) => s.state === 'failed');
    if (failed.length > 0)
      throw new Error(`servers failed: ${JSON.stringify(failed.map((s) => ({ name: s.name, error: s.error })))}`);
    if (expected.every((name) => servers.find((s) => s.name === name)?.state === 'ready')) break;
    if (performance.now() - startedAt > READY_TIMEOUT_MS)
      throw new Error(
        `not ready after ${READY_TIMEOUT_MS} ms: ${servers.map((s) => `${s.name}=${s.state}`).join(', ')}`,
      );
    await delay(500);
  }
  results.allReadyMs = performance.now() - startedAt;
  console.log(
    `load bench: ${expected.length} servers ready in ${(results.allReadyMs / 1000).toFixed(1)} s (serve pid ${serve.pid}, ${base.origin}, tag ${tag})`,
  );

  // ── SSE clients, then a short warm-up so the "before" RSS is of a warmed-up serve ─────────────
  sse = await Promise.all(Array.from({ length: SSE_CLIENTS }, (_, i) => openSse(i, i !== 0)));
  for (let i = 0; i < 200; i++)
    await request('POST', `/v1/servers/${names[i % SERVERS]}/tools/add/call`, { arguments: { a: i, b: 1 } });
  await delay(1000);
  results.rssBefore = memoryOf(serve.pid);
  await scrapeLag(); // resets serve's lag histogram: the next scrape covers the load only

  // ── the load ─────────────────────────────────────────────────────────────────────────────────
  const latencies = [];
  const errors = {};
  let completed = 0;
  const clientLoop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  const samples = [];
  loadActive = true;
  clientLoop.enable();
  const cpu0 = {
    serve: cpuMsOf(serve.pid),
    bench: process.cpuUsage(),
    sandbox: await sandboxCpuMs(),
    engine: engineCpuMs(),
    machine: machineBusyMs(),
  };
  const t0 = performance.now();
  const endAt = t0 + LOAD_SECONDS * 1000;
  const callLoop = async (loop) => {
    const server = names[loop % SERVERS];
    for (let n = loop; performance.now() < endAt; n += CONCURRENCY) {
      const isAdd = n % 2 === 0;
      const tool = isAdd ? 'add' : 'echo';
      const args = isAdd ? { a: n, b: 1 } : { text: `${server}-${n}` };
      const want = isAdd ? String(n + 1) : args.text;
      const started = performance.now();
      try {
        const { status, text } = await request('POST', `/v1/servers/${server}/tools/${tool}/call`, { arguments: args });
        if (status !== 200) {
          let code = 'no envelope';
          try {
            code = JSON.parse(text).error?.code ?? code;
          } catch {
            // not JSON: keep 'no envelope'
          }
          bump(errors, `HTTP ${status} ${code}`);
          continue;
        }
        if (JSON.parse(text).content?.[0]?.text !== want) {
          bump(errors, 'wrong result');
          continue;
        }
        latencies.push(performance.now() - started);
        completed++;
      } catch (err) {
        bump(errors, `network ${err.code ?? err.message}`);
        await delay(10); // no hot loop against a refused port
      }
    }
  };
  const sampler = (async () => {
    while (performance.now() < endAt) {
      await delay(2000);
      const h = performance.now();
      const health = await request('GET', '/healthz', undefined, 10_000).catch((err) => ({ status: err.code }));
      samples.push({
        atS: (performance.now() - t0) / 1000,
        ...memoryOf(serve.pid),
        healthzMs: performance.now() - h,
        healthzStatus: health.status,
        completed,
      });
    }
  })();
  let churned = 0;
  const churn = (async () => {
    if (CHURN_MS <= 0) return;
    while (performance.now() < endAt) {
      await delay(CHURN_MS);
      if (performance.now() >= endAt) return;
      const r = await request('POST', '/v1/servers/churn/restart').catch((err) => ({ status: err.code }));
      if (r.status === 200) churned++;
      else bump(errors, `churn restart ${r.status}`);
    }
  })();
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, i) => callLoop(i)));
  const elapsedS = (performance.now() - t0) / 1000;
  const benchCpu = process.cpuUsage(cpu0.bench);
  const cpuMs = {
    serve: cpuMsOf(serve.pid) - cpu0.serve,
    bench: (benchCpu.user + benchCpu.system) / 1000,
    sandbox: (await sandboxCpuMs()) - cpu0.sandbox,
    engine: engineCpuMs() - cpu0.engine,
    machine: machineBusyMs() - cpu0.machine,
  };
  await Promise.all([sampler, churn]); // a restart of the churn server may still be stopping
  loadActive = false;
  clientLoop.disable();
  const lag = (ns) => Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS);

  results.load = {
    elapsedS,
    completed,
    throughputPerS: completed / elapsedS,
    latencyMs: {
      p50: percentile(latencies, 0.5),
      p90: percentile(latencies, 0.9),
      p99: percentile(latencies, 0.99),
      max: percentile(latencies, 1),
    },
    errors,
    errorCount: Object.values(errors).reduce((a, b) => a + b, 0),
    churnRestarts: churned,
  };
  // Share of one core: 100 = one core busy the whole time ("machine" counts all cores and everyone's work).
  results.cpuPercent = Object.fromEntries(Object.entries(cpuMs).map(([k, ms]) => [k, ms / elapsedS / 10]));
  results.serveCpuMsPerCall = cpuMs.serve / Math.max(1, completed);
  results.rssAfter = memoryOf(serve.pid);
  results.machine.loadavgAfterLoad = loadavg();
  results.serveEventLoopLagMs = await scrapeLag();
  results.benchEventLoopLagMs = {
    p50: lag(clientLoop.percentile(50)),
    p99: lag(clientLoop.percentile(99)),
    max: lag(clientLoop.max),
  };
  results.samples = samples;
  results.healthzDuringLoadMs = {
    p50: percentile(
      samples.map((x) => x.healthzMs),
      0.5,
    ),
    max: percentile(
      samples.map((x) => x.healthzMs),
      1,
    ),
  };

  // ── after the load: serve still healthy, servers ready, SSE readers got events ────────────────
  const health = [];
  for (let i = 0; i < 5; i++) {
    const h = performance.now();
    const r = await request('GET', '/healthz', undefined, 5000);
    health.push({ ms: performance.now() - h, status: r.status });
  }
  results.healthzAfterMs = percentile(
    health.map((h) => h.ms),
    0.5,
  );
  checks.healthzAnswers = health.every((h) => h.status === 200);
  // Times are reported, never asserted (a shared machine): these two are observations only.
  observations.healthzAfterUnder100ms = results.healthzAfterMs < 100;
  let states = {};
  for (let i = 0; i < 60; i++) {
    const { servers } = await getJson('/v1/servers');
    states = Object.fromEntries(servers.map((s) => [s.name, s.state]));
    if (expected.every((name) => states[name] === 'ready')) break;
    await delay(500); // the churn server may be mid-restart
  }
  results.statesAfter = states;
  checks.allReady = expected.every((name) => states[name] === 'ready');
  const readers = sse.filter((c) => c.read);
  results.sse = {
    readersEvents: { min: Math.min(...readers.map((c) => c.events)), max: Math.max(...readers.map((c) => c.events)) },
    readersEventsDuringLoad: {
      min: Math.min(...readers.map((c) => c.eventsDuringLoad)),
      max: Math.max(...readers.map((c) => c.eventsDuringLoad)),
    },
    readersClosed: readers.filter((c) => c.closed).length,
  };
  checks.sseReadersGotEvents =
    readers.every((c) => c.events > 0 && !c.closed) && (CHURN_MS <= 0 || readers.every((c) => c.eventsDuringLoad > 0));
  // The non-reader starts reading now: it must still be connected and get everything it was sent.
  const stalled = sse.find((c) => !c.read);
  results.sse.nonReaderClosedDuringLoad = stalled.closed;
  stalled.consume();
  stalled.res.resume();
  const lastId = Math.max(...readers.map((c) => c.lastId));
  for (let i = 0; i < 50 && stalled.lastId < lastId && !stalled.closed; i++) await delay(100);
  results.sse.nonReaderEventsAfterResume = stalled.events;
  checks.sseNonReaderCaughtUp = stalled.lastId >= lastId;
  checks.noErrors = results.load.errorCount === 0;
  observations.serveLagP99Under100ms =
    results.serveEventLoopLagMs.p99Ms !== null && results.serveEventLoopLagMs.p99Ms < 100;
} catch (err) {
  results.failure = String(err?.stack ?? err);
  checks.ran = false;
} finally {
  // ── teardown: SSE, agent, SIGTERM serve, our containers and volumes, the temp folder ──────────
  loadActive = false;
  for (const c of sse) c.req.destroy();
  agent.destroy();
  if (serve.exitCode === null && serve.signalCode === null) {
    serve.kill('SIGTERM');
    const t = performance.now();
    const exit = await Promise.race([exited, delay(45_000, null, { ref: false })]);
    if (exit === null) {
      serve.kill('SIGKILL');
      await exited;
    }
    results.serveExit = {
      ...(exit ?? { code: null, signal: 'SIGKILL (grace exceeded)' }),
      stopMs: performance.now() - t,
    };
    checks.serveExitedCleanly = exit !== null && exit.code === 0;
  }
  const filters = { label: [`mcp-box.tag=${tag}`] };
  const left = await docker.listContainers({ all: true, filters }).catch(() => []);
  const leftVolumes = (await docker.listVolumes({ filters }).catch(() => ({ Volumes: [] }))).Volumes ?? [];
  results.leftBehind = { containers: left.map((c) => c.Names[0]), volumes: leftVolumes.map((v) => v.Name) };
  checks.nothingLeftBehind = left.length === 0 && leftVolumes.length === 0;
  for (const c of left)
    await docker
      .getContainer(c.Id)
      .remove({ force: true })
      .catch(() => {});
  for (const v of leftVolumes)
    await docker
      .getVolume(v.Name)
      .remove({ force: true })
      .catch(() => {});
  rmSync(root, { recursive: true, force: true });
}

results.checks = checks;
results.observations = observations;
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/load.json', JSON.stringify(results, null, 2));
const f = (v, d = 1) => (v === undefined || v === null || Number.isNaN(v) ? '-' : v.toFixed(d));
if (results.load !== undefined) {
  const r = results.load;
  console.log(
    `load bench: ${CONCURRENCY} concurrent REST tool calls over ${SERVERS} servers + ${SSE_CLIENTS} SSE clients (1 never reads), ${f(r.elapsedS)} s`,
  );
  console.log('| measure | value |');
  console.log('|---|---:|');
  console.log(`| calls completed | ${r.completed} |`);
  console.log(`| throughput | ${f(r.throughputPerS, 0)}/s |`);
  console.log(`| latency p50 / p99 / max | ${f(r.latencyMs.p50)} / ${f(r.latencyMs.p99)} / ${f(r.latencyMs.max)} ms |`);
  console.log(
    `| errors | ${
      r.errorCount === 0
        ? 'none'
        : Object.entries(r.errors)
            .map(([k, n]) => `${k}: ${n}`)
            .join(', ')
    } |`,
  );
  console.log(
    `| serve RSS before / after / peak | ${f(results.rssBefore.rssMiB)} / ${f(results.rssAfter.rssMiB)} / ${f(results.rssAfter.hwmMiB)} MiB |`,
  );
  console.log(
    `| serve event-loop lag p50 / p99 / max | ${f(results.serveEventLoopLagMs.p50Ms)} / ${f(results.serveEventLoopLagMs.p99Ms)} / ${f(results.serveEventLoopLagMs.maxMs)} ms |`,
  );
  console.log(
    `| bench event-loop lag p50 / p99 / max | ${f(results.benchEventLoopLagMs.p50)} / ${f(results.benchEventLoopLagMs.p99)} / ${f(results.benchEventLoopLagMs.max)} ms |`,
  );
  const c = results.cpuPercent;
  console.log(
    `| CPU, % of one core: serve / sandbox / engine / bench / whole machine | ${f(c.serve, 0)} / ${f(c.sandbox, 0)} / ${f(c.engine, 0)} / ${f(c.bench, 0)} / ${f(c.machine, 0)} of ${cpus().length * 100} (serve ${f(results.serveCpuMsPerCall, 2)} ms per call) |`,
  );
  console.log(
    `| /healthz during the load (every 2 s): p50 / max | ${f(results.healthzDuringLoadMs.p50)} / ${f(results.healthzDuringLoadMs.max)} ms |`,
  );
  console.log(`| /healthz after the load (p50 of 5) | ${f(results.healthzAfterMs)} ms |`);
  if (results.sse !== undefined)
    console.log(
      `| SSE events per reader (during the load) | ${results.sse.readersEvents.min}–${results.sse.readersEvents.max} (${results.sse.readersEventsDuringLoad.min}–${results.sse.readersEventsDuringLoad.max}) |`,
    );
}
if (results.failure !== undefined)
  console.error(`load bench failed: ${results.failure}\n--- serve output (tail) ---\n${output.slice(-8000)}`);
const failedChecks = Object.entries(checks)
  .filter(([, ok]) => !ok)
  .map(([name]) => name);
console.log(
  `checks: ${failedChecks.length === 0 ? 'all passed' : `FAILED ${failedChecks.join(', ')}`} (${Object.keys(checks).join(', ')})`,
);
console.log(
  `observations (times, not checks): ${Object.entries(observations)
    .map(([k, v]) => `${k} ${v ? 'yes' : 'no'}`)
    .join(', ')}`,
);
if (failedChecks.length > 0) process.exitCode = 1;
