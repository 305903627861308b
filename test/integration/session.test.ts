import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BoxError } from '../../src/errors/box-error.js';
import type { Runtime, Session } from '../../src/runtime/types.js';
import { docker, testProfile, testRuntime } from '../helpers/runtime.js';

describe('sessions', () => {
  let runtime: Runtime;
  let session: Session;

  beforeAll(async () => {
    runtime = testRuntime();
    session = await runtime.ensureSession(testProfile());
  });
  afterAll(async () => {
    await runtime.close();
  });

  it('reuses the session of an equal profile and gives a different profile its own container', async () => {
    const again = await runtime.ensureSession(testProfile());
    expect(again.info.containerId).toBe(session.info.containerId);
    const concurrent = await Promise.all([
      runtime.ensureSession(testProfile({ memoryMb: 384 })),
      runtime.ensureSession(testProfile({ memoryMb: 384 })),
    ]);
    expect(concurrent[0].info.containerId).toBe(concurrent[1].info.containerId);
    expect(concurrent[0].info.containerId).not.toBe(session.info.containerId);
    expect(concurrent[0].info.profileHash).not.toBe(session.info.profileHash);
    await concurrent[0].remove();
    await concurrent[0].remove(); // idempotent
    await expect(docker.getContainer(concurrent[0].info.containerId).inspect()).rejects.toMatchObject({
      statusCode: 404,
    });
    await expect(docker.getVolume(concurrent[0].info.volume).inspect()).rejects.toMatchObject({ statusCode: 404 });
  });

  it('is hardened as seen from inside, by a tenant identity', async () => {
    const identity = await session.createIdentity();
    try {
      const probe = await session.exec({
        identity,
        cmd: [
          '/bin/sh',
          '-c',
          'grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status; id -u; touch /x && echo ROOTFS_WRITABLE; ' +
            'cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max 2>/dev/null; ' +
            'cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max 2>/dev/null; ' +
            'ls -ld "$HOME" | cut -c1-10; echo "HOME=$HOME TMPDIR=$TMPDIR"',
        ],
      });
      expect(probe.exitCode).toBe(0);
      expect(probe.stdout).toMatch(/CapEff:\s+0000000000000000/);
      expect(probe.stdout).toMatch(/NoNewPrivs:\s+1/);
      expect(probe.stdout).toMatch(/Seccomp:\s+2/);
      expect(probe.stdout).toContain(`\n${identity.uid}\n`);
      expect(probe.stdout).not.toContain('ROOTFS_WRITABLE');
      expect(probe.stderr).toMatch(/touch: cannot touch '\/x': (Read-only file system|Permission denied)/);
      expect(probe.stdout).toContain('\n256\n');
      expect(probe.stdout).toContain(`\n${512 * 1024 * 1024}\n`);
      expect(probe.stdout).toContain(`HOME=${identity.home} TMPDIR=${identity.tmp}`);
      expect(probe.stdout).toContain('drwx------');
    } finally {
      await session.releaseIdentity(identity);
    }
  });

  it('is hardened as seen from inspect, and labelled with owner, profile and version', async () => {
    const info = await docker.getContainer(session.info.containerId).inspect();
    expect(info.HostConfig.CapDrop).toEqual(['ALL']);
    expect(info.HostConfig.SecurityOpt).toContain('no-new-privileges:true');
    expect(info.HostConfig.Init).toBe(true);
    expect(info.HostConfig.ReadonlyRootfs).toBe(true);
    expect(info.HostConfig.Privileged).toBe(false);
    expect(info.HostConfig.PidsLimit).toBe(256);
    expect(info.HostConfig.Memory).toBe(512 * 1024 * 1024);
    expect(info.HostConfig.MemorySwap).toBe(512 * 1024 * 1024);
    expect(info.HostConfig.NanoCpus).toBe(1e9);
    expect(info.Config.User).toBe('10001:10001');
    expect((info.Mounts ?? []).map((m) => m.Source ?? '')).not.toContain('/var/run/docker.sock');
    expect(info.Mounts?.[0]).toMatchObject({ Type: 'volume', Name: session.info.volume, Destination: '/workspace' });
    expect(info.Config.Labels).toMatchObject({
      'mcp-box.managed': 'true',
      'mcp-box.owner': runtime.ownerId,
      'mcp-box.profile': session.info.profileHash,
    });
    expect(info.Config.Labels['mcp-box.version']).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('fails in session_create with IMAGE_MISSING for an image that is not there', async () => {
    const error = await runtime
      .ensureSession(testProfile({ image: 'mcp-box-no-such-image:never' }))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BoxError);
    expect(error).toMatchObject({ code: 'IMAGE_MISSING', phase: 'session_create' });
    expect((error as BoxError).message).toContain('mcp-box-no-such-image:never');
  });

  it('fails in box_unavailable when the engine cannot be reached', async () => {
    const offline = testRuntime({ socketPath: '/nonexistent/docker.sock' });
    const error = await offline.ensureSession(testProfile()).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ENGINE_UNREACHABLE', phase: 'box_unavailable' });
    await offline.close();
  });

  it('refuses a bad profile with the field named', async () => {
    await expect(runtime.ensureSession(testProfile({ memoryMb: 10 }))).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      phase: 'session_create',
      message: expect.stringContaining('memoryMb') as unknown,
    });
  });
});
