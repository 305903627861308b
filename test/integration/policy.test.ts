/**
 * A server definition is tenant input: against a real `serve`, POST /v1/servers may only narrow
 * the operator's box settings, and no definition (API or config file) may stage the config folder.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { eventually } from '../helpers/runtime.js';
import { serveApi, type ServeProcess, startServeProcess, stopAllServes } from '../helpers/serve-process.js';
import { HOST_CA_BUNDLE } from '../helpers/supervisor.js';

/** `serve --config FILE` expected to refuse: its exit code and output (killed after 30 s if it serves instead). */
function serveOnce(config: string): { code: number | null; out: string } {
  try {
    execFileSync(process.execPath, ['dist/cli.js', 'serve', '--config', config], {
      env: { ...process.env, MCP_BOX_TAG: inject('runTag') },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 30_000,
    });
    return { code: 0, out: '' };
  } catch (err) {
    const e = err as { status: number | null; stdout: string; stderr: string };
    return { code: e.status, out: `${e.stdout}${e.stderr}` };
  }
}

describe('tenant input may only narrow the operator settings (real serve)', () => {
  let dir: string;
  let configPath: string;
  let serve: ServeProcess;
  let token: string;
  const api = serveApi(
    () => serve.url,
    () => token,
  );
  const operatorBox = {
    image: inject('sandboxImage'),
    memoryMb: 512,
    allowedRoots: [tmpdir()],
    caCertsFile: HOST_CA_BUNDLE,
    restart: { backoffInitialMs: 200, maxRestarts: 0 },
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mcp-box-policy-'));
    mkdirSync(join(dir, 'servers', 'ok'), { recursive: true });
    configPath = join(dir, 'mcp-box.json');
    writeFileSync(configPath, JSON.stringify({ mcpServers: {}, box: operatorBox, server: { port: 0 } }));
    serve = await startServeProcess(configPath);
    token = readFileSync(join(dir, '.mcp-box', 'token'), 'utf8').trim();
  }, 60_000);
  afterAll(async () => {
    await stopAllServes();
    rmSync(dir, { recursive: true, force: true });
  });

  it('POST /v1/servers with box.caCertsFile: /proc/self/environ → 400 naming the field; nothing is added', async () => {
    const res = await api('POST', '/v1/servers', {
      name: 'environ',
      command: 'cat',
      box: { caCertsFile: '/proc/self/environ', client: 'external' },
    });
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({
      error: {
        code: 'INVALID_ARGUMENT',
        phase: 'config',
        message: expect.stringContaining(
          'mcpServers.environ.box.caCertsFile: set by the operator only (box.caCertsFile)',
        ) as unknown,
      },
    });
    expect((await api('GET', '/v1/servers/environ')).status).toBe(404);
  });

  it(
    'POST /v1/servers with memoryMb above the operator cap ' + '→ 400 naming field, value and cap; below it is added',
    async () => {
      const res = await api('POST', '/v1/servers', {
        name: 'big',
        command: 'cat',
        box: { memoryMb: 8192, readOnlyRootfs: false, client: 'external' },
      });
      expect(res.status).toBe(400);
      const message = (res.json.error as { message: string }).message;
      expect(message).toContain("mcpServers.big.box.memoryMb: 8192 is above the operator's cap of 512 (box.memoryMb)");
      expect(message).toContain(
        "mcpServers.big.box.readOnlyRootfs: false is refused: the operator's root filesystem is read-only " +
          '(box.readOnlyRootfs)',
      );
      const small = await api('POST', '/v1/servers', {
        name: 'small',
        command: 'cat',
        box: { memoryMb: 256, network: 'off', client: 'external' },
      });
      expect(small.status).toBe(201);
    },
  );

  it(
    'POST /v1/servers with hostPath = the config folder → 400 HOST_PATH_DENIED at add time ' +
      '(nothing started, nothing staged)',
    async () => {
      for (const hostPath of ['.', dir, join(dir, 'servers', '..')]) {
        const res = await api('POST', '/v1/servers', {
          name: 'cfg',
          command: 'cat',
          box: { hostPath, client: 'external' },
        });
        expect(res.status).toBe(400);
        expect(res.json).toMatchObject({
          error: {
            code: 'HOST_PATH_DENIED',
            phase: 'workspace_stage',
            message: expect.stringMatching(/holds the config folder .* never staged/) as unknown,
          },
        });
      }
      expect((await api('GET', '/v1/servers/cfg')).status).toBe(404);
    },
  );

  it('POST /v1/servers naming the config file in its args gets no folder inferred: it stages nothing', async () => {
    const res = await api('POST', '/v1/servers', {
      name: 'infer',
      command: 'cat',
      args: [configPath],
      box: { client: 'external' },
    });
    expect(res.status).toBe(201);
    const logs = await eventually(
      async () => {
        const lines = ((await api('GET', '/v1/servers/infer/logs')).json.lines as { text: string }[]).map(
          (l) => l.text,
        );
        return lines.some((l) => l.startsWith('staged ')) ? lines : undefined;
      },
      60_000,
      200,
    );
    expect(logs.find((l) => l.startsWith('staged '))).toMatch(/^staged 0 files \(0 bytes\)/);
  });

  it(
    'a config file whose server stages the config folder (hostPath or inferred from its args) ' +
      '→ serve refuses to start, naming the rule',
    () => {
      for (const server of [
        { command: 'cat', box: { hostPath: '.' } },
        { command: 'cat', args: [join(dir, 'mcp-box.json')] },
      ]) {
        const bad = join(dir, 'bad.json');
        writeFileSync(bad, JSON.stringify({ mcpServers: { greedy: server }, box: operatorBox, server: { port: 0 } }));
        const run = serveOnce(bad);
        expect(run.code).toBe(1);
        expect(run.out).toMatch(
          /\[workspace_stage\/HOST_PATH_DENIED\] mcpServers\.greedy: Host folder .* is not allowed: it holds the config folder/,
        );
      }
    },
  );
});
