import { describe, expect, it } from 'vitest';
import { SESSION_UID } from '../identity.js';
import { DEFAULT_PROFILE } from '../profile.js';
import type { SessionProfile } from '../types.js';
import { sessionContainerSpec, WORKSPACE_MOUNT } from './container-spec.js';
import type { SessionContainerInput } from './container-spec.js';

const MIB = 1024 * 1024;
const LABELS = { 'mcp-box.managed': 'true', 'mcp-box.session': 'sess-1', 'mcp-box.tag': 'unit' };

function spec(profile: Partial<SessionProfile> = {}, extra: Partial<SessionContainerInput> = {}) {
  return sessionContainerSpec({
    name: 'mcp-box-sess-1',
    profile: { ...DEFAULT_PROFILE, ...profile },
    volume: 'mcp-box-vol-1',
    labels: LABELS,
    ...extra,
  });
}

const PROFILES: { name: string; profile: Partial<SessionProfile> }[] = [
  { name: 'default profile', profile: {} },
  { name: 'network off, writable rootfs', profile: { network: 'off', readOnlyRootfs: false } },
  { name: 'small limits', profile: { cpus: 0.25, memoryMb: 64, pidsLimit: 16, tmpfsMb: 1 } },
  {
    name: 'large limits',
    profile: { cpus: 64, memoryMb: 65536, pidsLimit: 4096, tmpfsMb: 2048, image: 'custom/sandbox:2' },
  },
];

describe('sessionContainerSpec', () => {
  describe.each(PROFILES)('invariants with $name', ({ profile }) => {
    const body = spec(profile);
    const p = { ...DEFAULT_PROFILE, ...profile };

    it('drops all capabilities and adds none', () => {
      expect(body.HostConfig.CapDrop).toEqual(['ALL']);
      expect(body.HostConfig.CapAdd).toEqual([]);
    });

    it('sets no-new-privileges, init, and is not privileged', () => {
      expect(body.HostConfig.SecurityOpt).toContain('no-new-privileges:true');
      expect(body.HostConfig.SecurityOpt.some((o) => /unconfined/.test(o))).toBe(false);
      expect(body.HostConfig.Init).toBe(true);
      expect(body.HostConfig.Privileged).toBe(false);
    });

    it('follows the profile for rootfs, tmpfs, memory, cpus and pids', () => {
      expect(body.Image).toBe(p.image);
      expect(body.HostConfig.ReadonlyRootfs).toBe(p.readOnlyRootfs);
      expect(body.HostConfig.Tmpfs).toEqual({ '/tmp': `rw,nosuid,nodev,size=${p.tmpfsMb}m,mode=1777` });
      expect(body.HostConfig.Memory).toBe(p.memoryMb * MIB);
      expect(body.HostConfig.MemorySwap).toBe(body.HostConfig.Memory);
      expect(body.HostConfig.NanoCpus).toBe(Math.round(p.cpus * 1e9));
      expect(Number.isInteger(body.HostConfig.NanoCpus)).toBe(true);
      expect(body.HostConfig.PidsLimit).toBe(p.pidsLimit);
    });

    it('runs as a non-root user', () => {
      expect(body.User).toBe(`${SESSION_UID}:${SESSION_UID}`);
      const [uid, gid] = body.User.split(':').map(Number);
      expect(uid).toBeGreaterThan(0);
      expect(gid).toBeGreaterThan(0);
    });

    it('mounts only the named volume at /workspace (no bind mounts, no docker.sock)', () => {
      expect(WORKSPACE_MOUNT).toBe('/workspace');
      expect(body.HostConfig.Mounts).toEqual([
        { Type: 'volume', Source: 'mcp-box-vol-1', Target: '/workspace', ReadOnly: false },
      ]);
      expect(body.HostConfig).not.toHaveProperty('Binds');
      expect(body.HostConfig).not.toHaveProperty('Devices');
      expect(JSON.stringify(body)).not.toContain('docker.sock');
      expect(body.WorkingDir).toBe('/workspace');
    });

    it('passes labels through, never restarts, shares no IPC or ports', () => {
      expect(body.Labels).toEqual(LABELS);
      expect(body.HostConfig.RestartPolicy).toEqual({ Name: 'no' });
      expect(body.HostConfig.IpcMode).toBe('private');
      expect(body.HostConfig.PublishAllPorts).toBe(false);
      expect(body.HostConfig).not.toHaveProperty('PidMode');
      expect(body.HostConfig).not.toHaveProperty('UsernsMode');
    });

    it('keeps PID 1 idle and attaches nothing', () => {
      expect(body.Cmd).toEqual(['sleep', 'infinity']);
      expect(body.Entrypoint).toEqual([]);
      expect(body.Env).toEqual([]);
      expect([body.AttachStdin, body.AttachStdout, body.AttachStderr, body.OpenStdin, body.Tty]).toEqual([
        false,
        false,
        false,
        false,
        false,
      ]);
      expect(body.HostConfig.Ulimits).toContainEqual({ Name: 'core', Soft: 0, Hard: 0 });
    });
  });

  it.each([
    { network: 'off', NetworkMode: 'none', NetworkDisabled: true },
    { network: 'on', NetworkMode: 'bridge', NetworkDisabled: false },
  ] as const)(
    'network $network gives NetworkMode $NetworkMode and NetworkDisabled $NetworkDisabled',
    ({ network, NetworkMode, NetworkDisabled }) => {
      const body = spec({ network });
      expect(body.HostConfig.NetworkMode).toBe(NetworkMode);
      expect(body.NetworkDisabled).toBe(NetworkDisabled);
    },
  );

  it.each([
    { readOnlyRootfs: true, expected: true },
    { readOnlyRootfs: false, expected: false },
  ])('ReadonlyRootfs is $expected when readOnlyRootfs is $readOnlyRootfs', ({ readOnlyRootfs, expected }) => {
    expect(spec({ readOnlyRootfs }).HostConfig.ReadonlyRootfs).toBe(expected);
  });

  it.each([
    { memoryMb: 64, bytes: 67108864 },
    { memoryMb: 1536, bytes: 1610612736 },
    { memoryMb: 4096, bytes: 4294967296 },
  ])('memoryMb $memoryMb gives Memory = MemorySwap = $bytes', ({ memoryMb, bytes }) => {
    const body = spec({ memoryMb });
    expect(body.HostConfig.Memory).toBe(bytes);
    expect(body.HostConfig.MemorySwap).toBe(bytes);
  });

  it.each([
    { cpus: 1, nano: 1_000_000_000 },
    { cpus: 0.5, nano: 500_000_000 },
    { cpus: 1.5, nano: 1_500_000_000 },
    { cpus: 0.1, nano: 100_000_000 },
    { cpus: 2.3, nano: 2_300_000_000 },
  ])('cpus $cpus gives NanoCpus $nano', ({ cpus, nano }) => {
    expect(spec({ cpus }).HostConfig.NanoCpus).toBe(nano);
  });

  it.each([16, 256, 1000])('PidsLimit %i follows the profile', (pidsLimit) => {
    expect(spec({ pidsLimit }).HostConfig.PidsLimit).toBe(pidsLimit);
  });

  it.each([1, 64, 512])('tmpfs size follows tmpfsMb %i', (tmpfsMb) => {
    expect(spec({ tmpfsMb }).HostConfig.Tmpfs['/tmp']).toContain(`size=${tmpfsMb}m`);
  });

  it('uses the given name, volume and labels', () => {
    const labels = { a: '1' };
    const body = spec({}, { name: 'n-2', volume: 'v-2', labels });
    expect(body.name).toBe('n-2');
    expect(body.HostConfig.Mounts[0]?.Source).toBe('v-2');
    expect(body.Labels).toEqual({ a: '1' });
  });

  it('is deterministic', () => {
    expect(spec({ network: 'off' })).toEqual(spec({ network: 'off' }));
  });
});
