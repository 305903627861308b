#!/usr/bin/env node
/**
 * The `mcp-box` command line. Exit codes: 0 ok, 1 a check or operation failed, 2 usage error,
 * 3 the engine is unreachable.
 */
import { printable } from './util/printable.js';
import { parseArgs } from 'node:util';
import { BoxError, describeError } from './errors/box-error.js';
import { ensureSandboxImage } from './image/sandbox-image.js';
import { createDockerRuntime } from './runtime/docker/docker-runtime.js';
import { DEFAULT_SANDBOX_IMAGE, resolveProfile } from './runtime/profile.js';
import { MCP_BOX_VERSION } from './version.js';
import { ApiClient } from './cli/api-client.js';
import { createLogger, parseLogFormat, parseLogLevel, type Logger } from './log/logger.js';
import { loadConfig, type LoadedConfig } from './config/load-config.js';
import { realpathSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startServe } from './server/serve.js';
import type { LogLine } from './supervisor/server-log.js';
import type { ServerStatus } from './supervisor/types.js';

const SHUTDOWN_GRACE_MS = 30_000;
/** SIGHUP too: a closed terminal must stop serve like Ctrl-C does, not kill it with its sessions. */
const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

const USAGE = `mcp-box ${MCP_BOX_VERSION}: a sandboxed supervisor for stdio MCP servers

Usage:
  mcp-box serve --config FILE [--log-format text|json] [--log-level debug|info|warn|error]
                                   run the supervisor and its HTTP API
  mcp-box status [--json]          servers: state, phase, last error, uptime, restarts
  mcp-box tools NAME [--json]      the tools of a server
  mcp-box call NAME TOOL [JSON] [--timeout-ms N]
                                   call a tool; prints the result
  mcp-box logs NAME [--follow] [--after SEQ] [--json]
  (client verbs take --url URL, --token TOKEN, --config FILE; the token is read from the
   config's .mcp-box/token when not given)
  mcp-box image build [--base REF] [--tag REF] [--force]
                                   build the sandbox image (offline: a local Debian base is made with debootstrap)
  mcp-box reap [--all] [--json]    remove containers and volumes left by dead supervisors
  mcp-box doctor [--config FILE] [--image REF] [--json]
                                   check the engine, the image, the sandbox hardening (and with
                                   --config: the allowed roots and the token)
  mcp-box version
`;

const CLIENT_OPTIONS = { url: { type: 'string' }, token: { type: 'string' }, config: { type: 'string' }, json: { type: 'boolean' } } as const;

const EXIT_OK = 0;
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;
const EXIT_ENGINE = 3;

async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  switch (verb) {
    case 'image':
      return rest[0] === 'build' ? imageBuild(rest.slice(1)) : usage(`unknown image command: ${rest[0] ?? '(none)'}`);
    case 'reap':
      return reap(rest);
    case 'doctor':
      return doctor(rest);
    case 'serve':
      return serve(rest);
    case 'status':
      return status(rest);
    case 'tools':
      return tools(rest);
    case 'call':
      return call(rest);
    case 'logs':
      return logs(rest);
    case 'version':
    case '--version':
      console.log(MCP_BOX_VERSION);
      return EXIT_OK;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return verb === undefined ? EXIT_USAGE : EXIT_OK;
    default:
      return usage(`unknown command: ${verb}`);
  }
}

function usage(problem: string): number {
  console.error(`mcp-box: ${problem}\n\n${USAGE}`);
  return EXIT_USAGE;
}

async function imageBuild(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { base: { type: 'string' }, tag: { type: 'string' }, force: { type: 'boolean' } }, strict: true });
  const runtime = createDockerRuntime();
  try {
    const result = await ensureSandboxImage({
      runtime,
      ...(values.base === undefined ? {} : { base: values.base }),
      ...(values.tag === undefined ? {} : { tag: values.tag }),
      force: values.force === true,
      onProgress: (line) => console.error(`  ${line}`),
    });
    console.log(`${result.ref} ${result.built ? 'built' : 'up to date'} (id ${result.id.slice(7, 19)}, base ${result.base}, inputs ${result.inputsHash}, ${result.durationMs} ms)`);
    return EXIT_OK;
  } finally {
    await runtime.close();
  }
}

async function reap(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { all: { type: 'boolean' }, json: { type: 'boolean' } }, strict: true });
  const runtime = createDockerRuntime();
  try {
    const report = await runtime.reap({ includeUnknownOwners: values.all === true });
    if (values.json === true) console.log(JSON.stringify(report, null, 2));
    else {
      console.log(`removed ${report.removedContainers.length} container(s), ${report.removedVolumes.length} volume(s); kept ${report.kept.length} of live owners`);
      for (const name of [...report.removedContainers, ...report.removedVolumes]) console.log(`  removed ${name}`);
    }
    return EXIT_OK;
  } finally {
    await runtime.close();
  }
}

async function serve(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string' }, 'log-format': { type: 'string' }, 'log-level': { type: 'string' } }, strict: true });
  if (values.config === undefined) return usage('serve needs --config FILE');
  let log: Logger;
  try {
    log = createLogger({ format: parseLogFormat(values['log-format']), level: parseLogLevel(values['log-level']) });
  } catch (err) {
    return usage((err as Error).message);
  }
  const loaded = loadConfig(values.config);
  const handle = await startServe(loaded, { log });
  log.info(`mcp-box ${MCP_BOX_VERSION} serving ${Object.keys(loaded.config.mcpServers).length} server(s) from ${loaded.path}`, { config: loaded.path });
  log.info(`listening on ${handle.url} (API, relay and events)`, { url: handle.url });
  log.info(handle.tokenFile === null ? 'API token: the one in the config (server.token)' : `API token: in ${handle.tokenFile} (mode 0600)`);
  if (handle.reaped.removedContainers.length > 0) log.info(`reaped ${handle.reaped.removedContainers.length} container(s) left by dead supervisors`, { containers: handle.reaped.removedContainers });
  handle.supervisor.on('status', (e) => {
    if (e.previous === e.state) {
      if (e.phase !== undefined) log.debug(`${e.name}: phase ${e.phase}`, { server: e.name, phase: e.phase });
      return;
    }
    const failed = e.error !== undefined && (e.state === 'backoff' || e.state === 'failed');
    const why = failed ? ` — ${e.error?.phase}/${e.error?.code}: ${e.error?.message.split('\n')[0] ?? ''}` : '';
    const fields = { server: e.name, state: e.state, previous: e.previous, ...(failed ? { phase: e.error?.phase, code: e.error?.code } : {}) };
    (failed ? log.warn : log.info)(`${e.name}: ${e.previous ?? '-'} → ${e.state}${why}`, fields);
  });
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      // Repeats are normal (`kill %1` signals the job, then npm forwards it to serve once more), and
      // must not fall through to the default action, which would exit without removing the sessions.
      if (stopping) return log.info(`${signal}: already stopping`, { signal });
      stopping = true;
      log.info(`${signal}: stopping servers (grace ${SHUTDOWN_GRACE_MS / 1000} s)`, { signal });
      const timer = setTimeout(() => {
        log.error('shutdown grace exceeded; exiting');
        process.exit(EXIT_FAILED);
      }, SHUTDOWN_GRACE_MS);
      timer.unref();
      void handle.close().finally(resolve);
    };
    for (const signal of STOP_SIGNALS) process.on(signal, stop);
  });
  log.info('stopped');
  return EXIT_OK;
}

async function status(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: CLIENT_OPTIONS, strict: true });
  const api = ApiClient.from(values);
  const { servers } = await api.request<{ servers: ServerStatus[] }>('GET', '/v1/servers');
  if (values.json === true) {
    console.log(JSON.stringify(servers, null, 2));
    return EXIT_OK;
  }
  const rows = servers.map((s) => [
    s.name,
    s.state,
    s.phase ?? '-',
    s.error === undefined ? '-' : `${s.error.code}: ${s.error.message.split('\n')[0] ?? ''}`.slice(0, 60),
    s.readyAt === undefined ? '-' : formatUptime(Date.now() - Date.parse(s.readyAt)),
    String(s.restarts),
  ]);
  printTable(['NAME', 'STATE', 'PHASE', 'LAST ERROR', 'UPTIME', 'RESTARTS'], rows);
  return servers.some((s) => s.state === 'failed') ? EXIT_FAILED : EXIT_OK;
}

async function tools(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: CLIENT_OPTIONS, strict: true, allowPositionals: true });
  const [name] = positionals;
  if (name === undefined) return usage('tools needs a server NAME');
  const api = ApiClient.from(values);
  const { tools: list } = await api.request<{ tools: { name: string; description?: string }[] }>('GET', `/v1/servers/${encodeURIComponent(name)}/tools`);
  if (values.json === true) console.log(JSON.stringify(list, null, 2));
  else printTable(['TOOL', 'DESCRIPTION'], list.map((t) => [t.name, (t.description ?? '').split('\n')[0] ?? '']));
  return EXIT_OK;
}

async function call(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { ...CLIENT_OPTIONS, 'timeout-ms': { type: 'string' } }, strict: true, allowPositionals: true });
  const [name, tool, json] = positionals;
  if (name === undefined || tool === undefined) return usage('call needs NAME TOOL [JSON]');
  let argsObject: unknown = {};
  if (json !== undefined) {
    try {
      argsObject = JSON.parse(json);
    } catch {
      return usage(`the tool arguments are not JSON: ${json}`);
    }
  }
  const api = ApiClient.from(values);
  const timeoutMs = values['timeout-ms'] === undefined ? undefined : Number(values['timeout-ms']);
  const result = await api.request<{ content?: { type: string; text?: string }[]; isError?: boolean }>('POST', `/v1/servers/${encodeURIComponent(name)}/tools/${encodeURIComponent(tool)}/call`, {
    arguments: argsObject,
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });
  if (values.json === true) console.log(JSON.stringify(result, null, 2));
  else for (const part of result.content ?? []) console.log(part.type === 'text' ? printable(part.text ?? '') : JSON.stringify(part));
  return result.isError === true ? EXIT_FAILED : EXIT_OK;
}

async function logs(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { ...CLIENT_OPTIONS, follow: { type: 'boolean', short: 'f' }, after: { type: 'string' } }, strict: true, allowPositionals: true });
  const [name] = positionals;
  if (name === undefined) return usage('logs needs a server NAME');
  const api = ApiClient.from(values);
  let after = Number(values.after ?? 0);
  for (;;) {
    const page = await api.request<{ lines: LogLine[]; next: number }>('GET', `/v1/servers/${encodeURIComponent(name)}/logs?after=${after}&limit=500`);
    for (const l of page.lines) console.log(values.json === true ? JSON.stringify(l) : `${l.seq} ${l.at} [${l.source}] ${printable(l.text)}`);
    after = page.next;
    if (values.follow !== true) return EXIT_OK;
    if (page.lines.length === 0) await new Promise((r) => setTimeout(r, 1000));
  }
}

function printTable(header: string[], rows: string[][]): void {
  // Cells carry tenant text (error messages, tool descriptions): no terminal control reaches the operator.
  header = header.map(printable);
  rows = rows.map((r) => r.map(printable));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  console.log(line(header));
  for (const r of rows) console.log(line(r));
}

function formatUptime(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}

/** Checks that need the config: the allowed roots and the API token. */
function configChecks(loaded: LoadedConfig): Check[] {
  const checks: Check[] = [];
  const roots = (loaded.config.box.allowedRoots ?? [loaded.configDir]).map((r) => resolve(loaded.configDir, r));
  for (const root of roots) {
    try {
      const real = realpathSync(root);
      const denied = ['/', '/etc', '/proc', '/sys', '/dev', '/root', '/home'].includes(real);
      checks.push({ name: 'root', ok: !denied, detail: denied ? `${root}: a server folder can never be this folder itself; allow a project folder below it` : `${root} exists` });
    } catch {
      checks.push({ name: 'root', ok: false, detail: `${root} (box.allowedRoots) does not exist` });
    }
  }
  if (loaded.config.server.token !== undefined) checks.push({ name: 'token', ok: true, detail: 'set in the config (server.token)' });
  else {
    const file = join(loaded.stateDir, 'token');
    try {
      const mode = statSync(file).mode & 0o777;
      checks.push({ name: 'token', ok: mode === 0o600, detail: mode === 0o600 ? `${file} (0600)` : `${file} has mode ${mode.toString(8)}; it must be 0600` });
    } catch {
      checks.push({ name: 'token', ok: true, detail: `none yet; serve will generate ${file} (0600)` });
    }
  }
  return checks;
}

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

async function doctor(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { image: { type: 'string' }, json: { type: 'boolean' }, config: { type: 'string' } }, strict: true });
  const loaded = values.config === undefined ? null : loadConfig(values.config);
  const image = values.image ?? loaded?.config.box.image ?? DEFAULT_SANDBOX_IMAGE;
  const checks: Check[] = loaded === null ? [] : configChecks(loaded);
  const runtime = createDockerRuntime();
  try {
    try {
      const engine = await runtime.ping();
      checks.unshift({ name: 'engine', ok: true, detail: `Docker ${engine.version} (API ${engine.apiVersion}), ${engine.os}/${engine.arch}, cgroup v${engine.cgroupVersion}` });
    } catch (err) {
      checks.unshift({ name: 'engine', ok: false, detail: describeError(err) });
    }
    if (checks[0]?.ok === true) {
      const info = await runtime.imageInfo(image);
      checks.push({ name: 'image', ok: info !== null, detail: info === null ? `${image} is missing: run \`mcp-box image build\`` : `${image} (${info.id.slice(7, 19)})` });
      if (info !== null) {
        try {
          // ensureSession runs the hardening self-check and refuses a session that fails it.
          const session = await runtime.ensureSession(resolveProfile({ image, memoryMb: 256, pidsLimit: 64 }));
          checks.push({ name: 'hardening', ok: true, detail: 'CapEff 0, NoNewPrivs 1, seccomp filter, non-root, read-only rootfs, pids/memory limits, no Docker socket' });
          await session.remove();
        } catch (err) {
          checks.push({ name: 'hardening', ok: false, detail: describeError(err) });
        }
      }
    }
  } finally {
    await runtime.close().catch(() => undefined);
  }
  if (values.json === true) console.log(JSON.stringify({ ok: checks.every((c) => c.ok), checks }, null, 2));
  else for (const c of checks) console.log(`${c.ok ? 'ok  ' : 'FAIL'} ${c.name.padEnd(10)} ${c.detail}`);
  if (checks[0]?.ok === false) return EXIT_ENGINE;
  return checks.every((c) => c.ok) ? EXIT_OK : EXIT_FAILED;
}

// A reader that went away (`mcp-box serve | head`, a closed terminal) turns every later write to
// stdout/stderr into an EPIPE/EIO 'error' event; unhandled, the first one would crash the CLI.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof BoxError) {
      console.error(`mcp-box: [${err.phase}/${err.code}] ${err.message}`);
      process.exitCode = err.code === 'ENGINE_UNREACHABLE' ? EXIT_ENGINE : EXIT_FAILED;
    } else if (err instanceof TypeError && 'code' in err && String((err as { code: unknown }).code).startsWith('ERR_PARSE_ARGS')) {
      process.exitCode = usage(err.message);
    } else {
      console.error(`mcp-box: ${describeError(err)}`);
      process.exitCode = EXIT_FAILED;
    }
  },
);
