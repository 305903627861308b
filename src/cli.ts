#!/usr/bin/env node
/**
 * The `mcp-box` command line. Exit codes: 0 ok, 1 a check or operation failed, 2 usage error,
 * 3 the engine is unreachable.
 */
import { parseArgs } from 'node:util';
import { BoxError, describeError } from './errors/box-error.js';
import { ensureSandboxImage } from './image/sandbox-image.js';
import { createDockerRuntime } from './runtime/docker/docker-runtime.js';
import { DEFAULT_SANDBOX_IMAGE, resolveProfile } from './runtime/profile.js';
import { MCP_BOX_VERSION } from './version.js';

const USAGE = `mcp-box ${MCP_BOX_VERSION}: a sandboxed supervisor for stdio MCP servers

Usage:
  mcp-box serve --config FILE      run the supervisor and its HTTP API (not implemented yet)
  mcp-box image build [--base REF] [--tag REF] [--force]
                                   build the sandbox image (offline: a local Debian base is made with debootstrap)
  mcp-box reap [--all] [--json]    remove containers and volumes left by dead supervisors
  mcp-box doctor [--image REF] [--json]
                                   check the engine, the image and the sandbox hardening
  mcp-box version
`;

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
      console.error('mcp-box serve: not implemented yet — the runtime, image and reaper are (see README "Status").');
      return EXIT_FAILED;
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

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

async function doctor(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { image: { type: 'string' }, json: { type: 'boolean' } }, strict: true });
  const image = values.image ?? DEFAULT_SANDBOX_IMAGE;
  const checks: Check[] = [];
  const runtime = createDockerRuntime();
  try {
    try {
      const engine = await runtime.ping();
      checks.push({ name: 'engine', ok: true, detail: `Docker ${engine.version} (API ${engine.apiVersion}), ${engine.os}/${engine.arch}, cgroup v${engine.cgroupVersion}` });
    } catch (err) {
      checks.push({ name: 'engine', ok: false, detail: describeError(err) });
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
