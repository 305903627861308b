/**
 * Session liveness under faults, at the runtime level: a session is reused only when the engine
 * says its container runs, whatever the event stream delivered; an exec the dead container refuses
 * is SESSION_DEAD; a replacement re-attaches the dead session's volume with the identities in it.
 * The runtime talks to the engine through a proxy that swallows the event stream, so no `die`,
 * `kill` or `destroy` ever reaches it (the fault that wedged recovery for good).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../../src/runtime/types.js';
import { EngineProxy } from '../helpers/engine-proxy.js';
import { docker, eventually, testProfile, testRuntime } from '../helpers/runtime.js';

async function stopped(containerId: string): Promise<void> {
  await eventually(
    async () => ((await docker.getContainer(containerId).inspect()).State.Running ? undefined : true),
    20_000,
    50,
  );
}

describe('session liveness is a fact, not a flag (event stream lost)', () => {
  let dir: string;
  let proxy: EngineProxy;
  let runtime: Runtime;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mcp-box-noevents-'));
    proxy = new EngineProxy(join(dir, 'docker.sock'), undefined, { dropEvents: true });
    await proxy.start();
    runtime = testRuntime({ socketPath: proxy.path });
  });
  afterAll(async () => {
    await runtime.close();
    await proxy.cut();
    rmSync(dir, { recursive: true, force: true });
  });

  it('never hands out a session whose container was killed unseen', async () => {
    const first = await runtime.ensureSession(testProfile());
    await docker.getContainer(first.info.containerId).kill();
    await stopped(first.info.containerId);
    const next = await runtime.ensureSession(testProfile());
    expect(next.info.containerId).not.toBe(first.info.containerId);
    expect(first.alive).toBe(false);
    expect((await next.exec({ cmd: ['true'] })).exitCode).toBe(0);
  });

  it('turns an exec the dead container refuses into SESSION_DEAD and marks the session dead', async () => {
    const session = await runtime.ensureSession(testProfile());
    await docker.getContainer(session.info.containerId).kill();
    await stopped(session.info.containerId);
    await expect(session.exec({ cmd: ['true'] })).rejects.toMatchObject({ code: 'SESSION_DEAD', phase: 'runtime' });
    expect(session.alive).toBe(false);
    await expect(session.createIdentity()).rejects.toMatchObject({ code: 'SESSION_DEAD', phase: 'process_start' });
  });

  it(
    'after docker rm -f, the replacement re-attaches the ' + 'volume: held identities keep their files, leftovers go',
    async () => {
      const session = await runtime.ensureSession(testProfile());
      const identity = await session.createIdentity();
      const kept = await session.exec({
        identity,
        cmd: ['/bin/sh', '-c', 'echo remembered > "$HOME/note" && mkdir -p "$TMPDIR/../deps/x"'],
      });
      expect(kept.exitCode).toBe(0);
      // A folder of a uid nobody holds any more (a server removed while its session was down).
      const stray = await session.exec({
        cmd: ['/bin/sh', '-c', 'mkdir /workspace/.mcp/s777-leftover && echo ok'],
        identity: { ...identity, uid: 100777, gid: 100777 },
      });
      expect(stray.stdout).toContain('ok');
      await docker.getContainer(session.info.containerId).remove({ force: true });
      await eventually(
        async () =>
          await docker
            .getContainer(session.info.containerId)
            .inspect()
            .then(
              () => undefined,
              () => true,
            ),
        20_000,
      );

      const next = await runtime.ensureSession(testProfile());
      expect(next.info.containerId).not.toBe(session.info.containerId);
      expect(next.info.volume).toBe(session.info.volume);
      expect(next.holds(identity)).toBe(true);
      expect(session.holds(identity)).toBe(false);
      const read = await next.exec({
        identity,
        cmd: ['/bin/sh', '-c', 'cat "$HOME/note"; ls /workspace/.mcp/s777-leftover 2>&1 || echo GONE'],
      });
      expect(read.stdout).toContain('remembered');
      expect(read.stdout).toContain('GONE');
      // The dead handle's remove() must not take the volume its replacement now mounts.
      await session.remove();
      expect((await docker.getVolume(next.info.volume).inspect()).Name).toBe(next.info.volume);
      expect((await next.exec({ identity, cmd: ['cat', `${identity.home}/note`] })).stdout).toContain('remembered');
      await next.releaseIdentity(identity);
    },
  );
});
