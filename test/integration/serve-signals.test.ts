/**
 * How `serve` ends: on SIGTERM/SIGINT/SIGHUP it stops its servers and removes its sessions — also
 * when its stdout/stderr reader is gone, when the signal comes twice (a job's group and npm's
 * forward), and when it was started through `npm start` (package.json → scripts/start.sh).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { docker, eventually } from '../helpers/runtime.js';
import { startServeProcess, stopAllServes, type ServeProcess } from '../helpers/serve-process.js';

const exited = (child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve({ code: child.exitCode, signal: child.signalCode })
    : new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Containers of this run owned by the serve with `pid` (its sessions). */
const sessionsOf = async (pid: number): Promise<string[]> =>
  (
    await docker.listContainers({
      all: true,
      filters: { label: [`mcp-box.tag=${inject('runTag')}`, `mcp-box.owner.pid=${pid}`] },
    })
  ).map((c) => c.Id);

const ready = (serve: { output: () => string }): Promise<true> =>
  eventually(() => (/idle: \S+ → ready/.test(serve.output()) ? true : undefined), 60_000, 100);

describe('serve: signals, closed output and npm start', () => {
  let dir: string;
  let configPath: string;
  /** Serve pids this file started (directly or through npm), for the cleanup of a failed test. */
  const servePids: number[] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'mcp-box-signals-'));
    configPath = join(dir, 'mcp-box.json');
    // One idle server: a session container exists, and stopping it takes a moment (sleep ignores stdin EOF).
    writeFileSync(
      configPath,
      JSON.stringify({
        mcpServers: { idle: { command: 'sleep', args: ['600'], box: { client: 'external' } } },
        box: { image: inject('sandboxImage'), memoryMb: 256, pidsLimit: 64, allowedRoots: [tmpdir()] },
        server: { port: 0 },
      }),
    );
  });
  afterAll(async () => {
    await stopAllServes();
    for (const pid of servePids.filter(alive)) {
      process.kill(pid, 'SIGTERM');
      await eventually(() => (alive(pid) ? undefined : true), 40_000, 200).catch(() => undefined);
    }
    // What a crashed serve left (only when a test failed): this file's containers, by owner pid.
    for (const pid of servePids)
      for (const id of await sessionsOf(pid))
        await docker
          .getContainer(id)
          .remove({ force: true, v: true })
          .catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  const startReady = async (): Promise<ServeProcess> => {
    const serve = await startServeProcess(configPath);
    servePids.push(serve.child.pid as number);
    await ready(serve);
    expect(await sessionsOf(serve.child.pid as number)).toHaveLength(1);
    return serve;
  };

  it('a closed stdout/stderr never crashes serve: SIGTERM still stops it cleanly and removes its session', async () => {
    const serve = await startReady();
    // `serve | head`, then head exits: every later write of serve fails with EPIPE.
    serve.child.stdout?.destroy();
    serve.child.stderr?.destroy();
    serve.child.kill('SIGTERM');
    expect(await exited(serve.child)).toEqual({ code: 0, signal: null });
    expect(await sessionsOf(serve.child.pid as number)).toEqual([]);
  });

  it(
    'SIGHUP (the terminal closed) stops serve cleanly, and ' + 'signals repeated while it stops do not cut that short',
    async () => {
      const serve = await startReady();
      const logged = (text: string, times = 1): Promise<true> =>
        eventually(() => (serve.output().split(text).length > times ? true : undefined), 10_000);
      serve.child.kill('SIGHUP');
      await logged('SIGHUP: stopping servers');
      // `kill %1` signals the whole job, and npm forwards the same signal to its child once more.
      serve.child.kill('SIGTERM');
      await logged('SIGTERM: already stopping');
      serve.child.kill('SIGTERM');
      await logged('SIGTERM: already stopping', 2);
      expect(await exited(serve.child)).toEqual({ code: 0, signal: null });
      expect(serve.output()).toMatch(/stopped\s*$/);
      expect(await sessionsOf(serve.child.pid as number)).toEqual([]);
    },
  );

  describe('npm start (the real package.json start script and scripts/start.sh; prepare stubbed)', () => {
    let pkg: string;
    beforeAll(() => {
      pkg = join(dir, 'pkg');
      mkdirSync(join(pkg, 'scripts'), { recursive: true });
      const real = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: { start: string } };
      writeFileSync(
        join(pkg, 'package.json'),
        JSON.stringify({
          name: 'mcp-box-start-test',
          version: '0.0.0',
          private: true,
          scripts: { start: real.scripts.start },
        }),
      );
      copyFileSync('scripts/start.sh', join(pkg, 'scripts/start.sh'));
      // The real prepare (deps, engine, build, image) already ran for this suite; a slow step stands in with
      // SLOW_PREPARE.
      writeFileSync(
        join(pkg, 'scripts/prepare.sh'),
        `#!/usr/bin/env bash\n` +
          `if [ -n "\${SLOW_PREPARE:-}" ]; then bash -c 'echo $$ > prepare.pid; exec sleep 60'; fi\n`,
      );
      symlinkSync(join(process.cwd(), 'dist'), join(pkg, 'dist'));
    });
    afterAll(() => {
      // A prepare step left running (only when a test failed): kill it, so start.sh never reaches serve.
      const file = join(pkg, 'prepare.pid');
      const pid = existsSync(file) ? Number(readFileSync(file, 'utf8')) : 0;
      if (pid > 0 && alive(pid)) process.kill(pid, 'SIGKILL');
    });

    const npmStart = (env: Record<string, string> = {}): { npm: ChildProcess; output: () => string } => {
      const npm = spawn('npm', ['start', '--', configPath], {
        cwd: pkg,
        env: { ...process.env, MCP_BOX_TAG: inject('runTag'), npm_config_update_notifier: 'false', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      npm.stdout?.on('data', (c: Buffer) => (out += c.toString()));
      npm.stderr?.on('data', (c: Buffer) => (out += c.toString()));
      return { npm, output: () => out };
    };

    it('kill <pid of npm start> reaches serve: it stops and removes its session', async () => {
      const before = new Set(
        (await docker.listContainers({ all: true, filters: { label: [`mcp-box.tag=${inject('runTag')}`] } })).map(
          (c) => c.Id,
        ),
      );
      const run = npmStart();
      await ready(run);
      const session = await eventually(async () =>
        (await docker.listContainers({ all: true, filters: { label: [`mcp-box.tag=${inject('runTag')}`] } })).find(
          (c) => !before.has(c.Id),
        ),
      );
      const servePid = Number(session.Labels['mcp-box.owner.pid']);
      servePids.push(servePid);
      run.npm.kill('SIGTERM'); // npm's pid only, as `kill %1` in a script without job control
      await exited(run.npm);
      await eventually(() => (alive(servePid) ? undefined : true), 40_000, 200);
      expect(run.output()).toContain('SIGTERM: stopping servers');
      expect(await sessionsOf(servePid)).toEqual([]);
    });

    it('a signal while prepare still runs stops prepare too, and serve never starts', async () => {
      const run = npmStart({ SLOW_PREPARE: '1' });
      const prepared = join(pkg, 'prepare.pid');
      const preparePid = await eventually(
        () => (existsSync(prepared) ? Number(readFileSync(prepared, 'utf8')) || undefined : undefined),
        30_000,
      );
      run.npm.kill('SIGTERM');
      await exited(run.npm);
      await eventually(() => (alive(preparePid) ? undefined : true), 10_000, 100);
      expect(run.output()).not.toContain('listening on');
    });
  });
});
