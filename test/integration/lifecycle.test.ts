import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import type { Runtime, Session, SessionEvent } from '../../src/runtime/types.js';
import { collect, docker, eventually, testProfile, testRuntime } from '../helpers/runtime.js';

describe('engine events, OOM and container death', () => {
  let runtime: Runtime;

  beforeAll(() => {
    runtime = testRuntime();
  });
  afterAll(async () => {
    await runtime.close();
  });

  it('reports a memory bomb as OOM, with the session still alive', async () => {
    const session = await runtime.ensureSession(testProfile({ memoryMb: 128 }));
    const identity = await session.createIdentity();
    const neighbour = await session.startProcess({
      id: 'neighbour',
      identity: await session.createIdentity(),
      cmd: ['cat'],
    });
    const bomb = await session.startProcess({
      id: 'bomb',
      identity,
      cmd: ['python3', '-c', 'import time\nx = b"x" * (400 * 1024 * 1024)\ntime.sleep(60)'],
    });
    const exit = await bomb.exited;
    expect(exit).toMatchObject({ exitCode: 137, signal: 'SIGKILL', reason: 'oom', oomKilled: true });
    expect(session.alive).toBe(true);
    expect(neighbour.running).toBe(true);
    const state = await session.inspect();
    expect(state.running).toBe(true);
    expect(state.oomKilled).toBe(false); // the container's flag stays false: attribution is ours
    await neighbour.stop({ eofGraceMs: 1000 });
    await session.remove();
  });

  it('a process killed by a signal it sent itself is not called OOM', async () => {
    const session = await runtime.ensureSession(testProfile());
    const identity = await session.createIdentity();
    const proc = await session.startProcess({ id: 'self-kill', identity, cmd: ['/bin/sh', '-c', 'kill -9 $$'] });
    expect(await proc.exited).toMatchObject({ exitCode: 137, signal: 'SIGKILL', reason: 'exited', oomKilled: false });
    await session.releaseIdentity(identity);
  });

  it('sees the exit of a process whose daemonised child keeps stdout open (exec_die)', async () => {
    const session = await runtime.ensureSession(testProfile());
    const identity = await session.createIdentity();
    const started = Date.now();
    const proc = await session.startProcess({
      id: 'daemoniser',
      identity,
      cmd: ['/bin/sh', '-c', 'sleep 1000 & echo parent-done; exit 5'],
    });
    const exit = await proc.exited;
    expect(exit).toMatchObject({ exitCode: 5, reason: 'exited' });
    expect(Date.now() - started).toBeLessThan(10_000);
    await session.releaseIdentity(identity);
  });

  it('attributes a container death to the session and ends its processes with container_died', async () => {
    const session: Session = await runtime.ensureSession(testProfile({ memoryMb: 320 }));
    const events: SessionEvent[] = [];
    session.onEvent((e) => events.push(e));
    const identity = await session.createIdentity();
    const proc = await session.startProcess({ id: 'victim', identity, cmd: ['cat'] });
    await docker.getContainer(session.info.containerId).kill();
    const exit = await proc.exited;
    expect(exit.reason).toBe('container_died');
    await eventually(() => (events.some((e) => e.action === 'die') ? true : undefined));
    expect(events.find((e) => e.action === 'die')?.containerId).toBe(session.info.containerId);
    expect(session.alive).toBe(false);
    await expect(session.startProcess({ id: 'late', identity, cmd: ['cat'] })).rejects.toMatchObject({
      code: 'SESSION_DEAD',
    });
    // A new ensureSession for the same profile recreates it.
    const fresh = await runtime.ensureSession(testProfile({ memoryMb: 320 }));
    expect(fresh.info.containerId).not.toBe(session.info.containerId);
    expect(fresh.alive).toBe(true);
    await session.remove();
    await fresh.remove();
  });
});

describe('reaper', () => {
  it('removes the container and volume left by a supervisor killed with kill -9, and keeps live owners', async () => {
    const tag = inject('runTag');
    const child = spawn(process.execPath, ['test/fixtures/owner-process.mjs', tag, inject('sandboxImage')], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const ready = await collect(child.stdout, (t) => t.includes('\n'), 60_000);
    const [, sessionName, volume] = ready.trim().split(' ');
    expect(sessionName).toMatch(/^mcp-box-/);

    const runtime = testRuntime();
    const mine = await runtime.ensureSession(testProfile({ memoryMb: 300 }));
    // While the owner lives, nothing of it is reaped.
    let report = await runtime.reap();
    expect(report.removedContainers).not.toContain(sessionName);

    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    const listed = await runtime.listManaged();
    expect(listed.find((r) => r.name === sessionName)?.owner).toBe('dead');
    report = await runtime.reap();
    expect(report.removedContainers).toContain(sessionName);
    expect(report.removedVolumes).toContain(volume);
    expect(report.removedContainers).not.toContain(mine.info.name);
    await expect(docker.getContainer(sessionName as string).inspect()).rejects.toMatchObject({ statusCode: 404 });
    expect(mine.alive).toBe(true);
    await runtime.close();
  });
});
