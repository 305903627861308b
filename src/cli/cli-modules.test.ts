/**
 * The client commands must start fast and work where the engine is not: they load neither the
 * engine client (dockerode) nor the supervisor. Proven twice: in process (the modules recorded when
 * vitest loads them), and on the built CLI (`node dist/cli.js`, with a preload that lists the
 * CommonJS modules loaded, dockerode's among them when it is).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

const loaded = vi.hoisted(() => new Set<string>());
vi.mock('dockerode', () => {
  loaded.add('dockerode');
  return { default: class {} };
});
vi.mock('../supervisor/supervisor.js', () => {
  loaded.add('supervisor');
  return {};
});

/** A local port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

describe('client commands load neither dockerode nor the supervisor (in process)', () => {
  let out: string[];
  beforeEach(() => {
    out = [];
    vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
    vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  });
  afterEach(() => loaded.clear());

  it('status --help, status against a serve that is not running, and tools/call/logs --help', async () => {
    const { runCli } = await import('./main.js');
    expect(await runCli(['status', '--help'])).toBe(0);
    expect(out.join('\n')).toMatch(/^Usage: mcp-box status \[--json\]/);
    const url = `http://127.0.0.1:${await closedPort()}`;
    expect(await runCli(['status', '--url', url, '--token', 'unit-test-token'])).toBe(4);
    for (const cmd of ['tools', 'call', 'logs']) expect(await runCli([cmd, '--help'])).toBe(0);
    expect(await runCli(['help', 'status'])).toBe(0);
    expect(await runCli(['help'])).toBe(0);
    expect(await runCli(['help', '--help'])).toBe(0);
    expect(await runCli(['status', '--nope'])).toBe(2);
    expect(out.join('\n')).toMatch(/mcp-box: unknown option --nope\n\nUsage: mcp-box status/);
    expect(await runCli(['nope'])).toBe(2);
    expect(await runCli(['image'])).toBe(2);
    expect(out.join('\n')).toContain('mcp-box: unknown image command: (none)');
    // The client module itself, not just the help path.
    await import('./client-commands.js');
    expect([...loaded]).toEqual([]);
  });

  it('the check sees a module that does load them (the engine commands)', async () => {
    await import('./engine-commands.js');
    expect(loaded.has('dockerode')).toBe(true);
  });
});

const DIST_CLI = join(process.cwd(), 'dist', 'cli.js');

// After `npm run build` (the test script builds before the tests); skipped on a tree never built.
describe.skipIf(!existsSync(join(process.cwd(), 'dist', 'cli', 'main.js')))(
  'the built CLI: client commands do not load dockerode',
  () => {
    const preload = join(mkdtempSync(join(tmpdir(), 'mcp-box-cli-')), 'list-cjs.mjs');
    writeFileSync(
      preload,
      `import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
process.on('exit', () => {
  const docker = Object.keys(require.cache).filter((k) => ` +
        `/[\\\\/]node_modules[\\\\/](dockerode|docker-modem)[\\\\/]/.test(k));
  process.stderr.write('\\nCJS-DOCKER-MODULES ' + docker.length + '\\n');
});
`,
    );
    const run = async (args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string }> => {
      try {
        const { stdout, stderr } = await promisify(execFile)(
          process.execPath,
          ['--import', preload, DIST_CLI, ...args],
          { encoding: 'utf8', env: { ...process.env, ...env } },
        );
        return { code: 0, out: stdout + stderr };
      } catch (err) {
        const e = err as { code: number; stdout: string; stderr: string };
        return { code: e.code, out: e.stdout + e.stderr };
      }
    };

    it('status --help: the help, and no module of dockerode', async () => {
      const { code, out } = await run(['status', '--help']);
      expect(code).toBe(0);
      expect(out).toMatch(/^Usage: mcp-box status/);
      expect(out).toMatch(/CJS-DOCKER-MODULES 0\n/);
    });

    it(
      'status against a serve that is not running: exit 4, ' + '"not running at <url>", and no module of dockerode',
      async () => {
        const url = `http://127.0.0.1:${await closedPort()}`;
        const { code, out } = await run(['status', '--url', url, '--token', 'unit-test-token']);
        expect(code).toBe(4);
        expect(out).toContain(`mcp-box serve is not running at ${url}`);
        expect(out).toMatch(/CJS-DOCKER-MODULES 0\n/);
      },
    );

    it(
      'the preload does see dockerode when a command loads ' +
        'it (doctor, against an engine socket that is not there)',
      async () => {
        const { code, out } = await run(['doctor', '--json'], {
          DOCKER_HOST: `unix://${join(tmpdir(), 'mcp-box-no-engine', 'docker.sock')}`,
        });
        expect(code).toBe(3);
        expect(out).toMatch(/CJS-DOCKER-MODULES [1-9]\d*\n/);
      },
    );
  },
);
