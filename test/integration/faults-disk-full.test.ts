/**
 * The operator's bad day: the disk under serve's state folder fills up. A real `serve` (the built
 * CLI) keeps its state on a 1 MiB tmpfs (a real filesystem that answers ENOSPC), which is then
 * filled to the last byte. Serve keeps answering, restarts and tool calls still work, the failed
 * writes are counted in /metrics and reported once, and writing resumes when space comes back.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { faultServerFolder } from '../helpers/fault-server.js';
import type { TempFolder } from '../helpers/folders.js';
import { eventually } from '../helpers/runtime.js';
import { serveApi, type ServeProcess, startServeProcess, stopAllServes } from '../helpers/serve-process.js';

describe('fault injection: the state folder’s disk is full', () => {
  let fixture: TempFolder;
  let stateDir: string;
  let serve: ServeProcess;
  let token: string;
  const api = serveApi(
    () => serve.url,
    () => token,
  );
  const metric = async (name: string): Promise<number> => {
    const res = await fetch(`${serve.url}/metrics`, { headers: { Authorization: `Bearer ${token}` } });
    const line = (await res.text()).split('\n').find((l) => l.startsWith(`${name} `));
    return Number(line?.split(' ')[1] ?? Number.NaN);
  };
  const waitReady = (name: string): Promise<unknown> =>
    eventually(
      async () => ((await api('GET', `/v1/servers/${name}`)).json.state === 'ready' ? true : undefined),
      60_000,
      100,
    );

  beforeAll(async () => {
    fixture = faultServerFolder();
    stateDir = join(fixture.path, '..', 'state-on-tmpfs');
    mkdirSync(stateDir, { recursive: true });
    // Root on Linux (as in CI): a real, tiny filesystem. Not root: the test fails here, loudly.
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'tmpfs', stateDir]);
    const configPath = join(fixture.path, '..', 'mcp-box.json');
    writeFileSync(
      configPath,
      JSON.stringify({
        mcpServers: {
          f: { command: 'node', args: ['server.cjs'], box: { hostPath: fixture.path, pingIntervalSec: 0 } },
        },
        box: {
          image: inject('sandboxImage'),
          memoryMb: 512,
          allowedRoots: [tmpdir()],
          restart: { backoffInitialMs: 100, maxRestarts: 20 },
        },
        server: { port: 0 },
        state: { dir: stateDir },
      }),
    );
    serve = await startServeProcess(configPath);
    token = readFileSync(join(stateDir, 'token'), 'utf8').trim();
    await waitReady('f');
  });
  afterAll(async () => {
    await stopAllServes();
    try {
      execFileSync('umount', [stateDir]);
    } catch {
      // not mounted (the mount itself failed)
    }
    rmSync(stateDir, { recursive: true, force: true });
    fixture.cleanup();
  });

  it(
    'serve keeps answering with its state disk full, counts ' +
      'the failed writes, and writes again once there is room',
    async () => {
      const filler = join(stateDir, 'filler');
      // Fill the filesystem to its last block (dd stops with ENOSPC).
      try {
        execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=4096'], { stdio: 'ignore' });
      } catch {
        // ENOSPC is the point
      }
      expect(() => writeFileSync(join(stateDir, 'probe'), 'x'.repeat(8192))).toThrow(/ENOSPC/);

      // Each restart writes lifecycle log lines and history records, each crash a failure record.
      for (let i = 0; i < 3; i++) {
        expect((await api('POST', '/v1/servers/f/restart')).status).toBe(200);
        await waitReady('f');
      }
      const restarts = (await api('GET', '/v1/servers/f')).json.restarts as number;
      await api('POST', '/v1/servers/f/tools/exit/call', { arguments: { code: 3 } }); // a crash: a failure record
      await eventually(
        async () => {
          const view = (await api('GET', '/v1/servers/f')).json;
          return view.state === 'ready' && (view.restarts as number) > restarts ? true : undefined;
        },
        60_000,
        100,
      );
      const errors = await eventually(async () => {
        const n = await metric('mcp_box_state_write_errors_total');
        return n > 0 ? n : undefined;
      }, 10_000);
      expect(errors).toBeGreaterThan(0);
      expect(serve.child.exitCode).toBeNull();
      const call = await api('POST', '/v1/servers/f/tools/add/call', { arguments: { a: 2, b: 3 } });
      expect(call.status).toBe(200);
      expect(JSON.stringify(call.json)).toContain('"5"');
      // Reported, but once: not a line per failed write.
      expect(serve.output().match(/cannot write the state file/g)?.length).toBe(1);

      // Room again: the next records reach the disk.
      rmSync(filler);
      const log = join(stateDir, 'servers', 'f', 'log.jsonl');
      const before = statSync(log).size;
      expect((await api('POST', '/v1/servers/f/restart')).status).toBe(200);
      await waitReady('f');
      await eventually(() => (statSync(log).size > before ? true : undefined), 10_000);
      expect(readFileSync(log, 'utf8')).toContain('ready');
    },
  );
});
