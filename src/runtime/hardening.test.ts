import { describe, expect, it } from 'vitest';
import { evaluateHardening, parseProbeOutput, probeComplete } from './hardening.js';
import { DEFAULT_PROFILE } from './profile.js';
import type { SessionProfile } from './types.js';

const GOOD: Record<string, string> = {
  CapEff: '0000000000000000',
  CapPrm: '0000000000000000',
  CapBnd: '0000000000000000',
  NoNewPrivs: '1',
  Seccomp: '2',
  uid: '10001',
  rootfs: 'ro',
  docker_sock: 'absent',
  pids_max: String(DEFAULT_PROFILE.pidsLimit),
  memory_max: String(DEFAULT_PROFILE.memoryMb * 1024 * 1024),
};

/** Probe output as the script prints it, with some keys overridden (undefined = line missing). */
function probe(overrides: Record<string, string | undefined> = {}): string {
  const values: Record<string, string | undefined> = { ...GOOD, ...overrides };
  return `${Object.entries(values)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n')}\n`;
}

const profile = (overrides: Partial<SessionProfile> = {}): SessionProfile => ({ ...DEFAULT_PROFILE, ...overrides });

describe('parseProbeOutput', () => {
  it('parses key=value lines, trimming whitespace and ignoring lines without a key', () => {
    const out = 'CapEff=0000000000000000\r\n  uid = 10001 \nno equals here\n=orphan\nempty=\nurl=a=b\n\n';
    expect(parseProbeOutput(out)).toEqual({ CapEff: '0000000000000000', uid: '10001', empty: '', url: 'a=b' });
  });

  it('keeps the last value of a repeated key', () => {
    expect(parseProbeOutput('Seccomp=0\nSeccomp=2\n')).toEqual({ Seccomp: '2' });
  });

  it('parses the full probe output', () => {
    expect(parseProbeOutput(probe())).toEqual(GOOD);
  });
});

describe('probeComplete', () => {
  it('is true for a whole probe, a failing one included: a bad value is a verdict', () => {
    expect(probeComplete(probe())).toBe(true);
    expect(probeComplete(probe({ CapEff: '00000000a80425fb', uid: '0', rootfs: 'rw' }))).toBe(true);
    // /proc/self/status without a Seccomp line (a kernel without it) is a finished probe that fails.
    expect(probeComplete(probe({ Seccomp: undefined }))).toBe(true);
  });

  it('is false for output cut short (a probe that timed out or was cut off says nothing about the container)', () => {
    expect(probeComplete('')).toBe(false);
    const whole = probe();
    expect(probeComplete(whole.slice(0, whole.indexOf('docker_sock')))).toBe(false);
    expect(probeComplete(probe({ memory_max: undefined }))).toBe(false);
  });
});

describe('evaluateHardening', () => {
  it('passes a fully hardened probe output', () => {
    const report = evaluateHardening(probe(), DEFAULT_PROFILE);
    expect(report).toEqual({ values: GOOD, failures: [], ok: true });
  });

  it('passes with a profile that matches non-default limits', () => {
    const p = profile({ pidsLimit: 64, memoryMb: 256 });
    const report = evaluateHardening(probe({ pids_max: '64', memory_max: String(256 * 1024 * 1024) }), p);
    expect(report.failures).toEqual([]);
    expect(report.ok).toBe(true);
  });

  it('accepts a writable rootfs when the profile does not ask for a read-only one', () => {
    const report = evaluateHardening(probe({ rootfs: 'rw' }), profile({ readOnlyRootfs: false }));
    expect(report.failures).toEqual([]);
    expect(report.ok).toBe(true);
  });

  it.each([
    { name: 'CapEff non-zero', overrides: { CapEff: '00000000a80425fb' }, knob: /CapEff is 00000000a80425fb/ },
    { name: 'CapEff missing', overrides: { CapEff: undefined }, knob: /CapEff is unknown/ },
    { name: 'CapPrm non-zero', overrides: { CapPrm: '0000000000000400' }, knob: /CapPrm is 0000000000000400/ },
    { name: 'CapBnd non-zero', overrides: { CapBnd: '000001ffffffffff' }, knob: /CapBnd is 000001ffffffffff/ },
    { name: 'CapBnd empty', overrides: { CapBnd: '' }, knob: /CapBnd is/ },
    { name: 'NoNewPrivs 0', overrides: { NoNewPrivs: '0' }, knob: /NoNewPrivs is 0/ },
    { name: 'NoNewPrivs missing', overrides: { NoNewPrivs: undefined }, knob: /NoNewPrivs is unknown/ },
    { name: 'Seccomp 0 (disabled)', overrides: { Seccomp: '0' }, knob: /Seccomp is 0/ },
    { name: 'Seccomp 1 (strict)', overrides: { Seccomp: '1' }, knob: /Seccomp is 1/ },
    { name: 'uid 0', overrides: { uid: '0' }, knob: /uid 0/ },
    { name: 'uid missing', overrides: { uid: undefined }, knob: /uid unknown/ },
    { name: 'rootfs rw with readOnlyRootfs', overrides: { rootfs: 'rw' }, knob: /root filesystem is writable/ },
    { name: 'rootfs missing with readOnlyRootfs', overrides: { rootfs: undefined }, knob: /root filesystem/ },
    { name: 'docker_sock present', overrides: { docker_sock: 'present' }, knob: /Docker socket/ },
    { name: 'docker_sock missing', overrides: { docker_sock: undefined }, knob: /Docker socket/ },
    { name: 'pids_max mismatch', overrides: { pids_max: '512' }, knob: /pids limit is 512, expected 256/ },
    { name: 'pids_max unlimited', overrides: { pids_max: 'max' }, knob: /pids limit is max, expected 256/ },
    { name: 'pids_max empty', overrides: { pids_max: '' }, knob: /pids limit is unset, expected 256/ },
    {
      name: 'memory_max mismatch',
      overrides: { memory_max: '1073741824' },
      knob: /memory limit is 1073741824, expected 1610612736/,
    },
    {
      name: 'memory_max unlimited',
      overrides: { memory_max: 'max' },
      knob: /memory limit is max, expected 1610612736/,
    },
    {
      name: 'memory_max missing',
      overrides: { memory_max: undefined },
      knob: /memory limit is unset, expected 1610612736/,
    },
  ])('fails on $name with exactly one message naming the knob', ({ overrides, knob }) => {
    const report = evaluateHardening(probe(overrides), DEFAULT_PROFILE);
    expect(report.ok).toBe(false);
    expect(report.failures).toHaveLength(1);
    expect(report.failures[0]).toMatch(knob);
  });

  it('fails on pids/memory when the profile differs from the probed values', () => {
    const report = evaluateHardening(probe(), profile({ pidsLimit: 128, memoryMb: 512 }));
    expect(report.ok).toBe(false);
    expect(report.failures).toEqual([
      `pids limit is 256, expected 128`,
      `memory limit is 1610612736, expected ${512 * 1024 * 1024}`,
    ]);
  });

  it('reports every failing knob of an unhardened container', () => {
    const report = evaluateHardening(
      probe({
        CapEff: '00000000a80425fb',
        CapPrm: '00000000a80425fb',
        CapBnd: '00000000a80425fb',
        NoNewPrivs: '0',
        Seccomp: '0',
        uid: '0',
        rootfs: 'rw',
        docker_sock: 'present',
        pids_max: 'max',
        memory_max: 'max',
      }),
      DEFAULT_PROFILE,
    );
    expect(report.ok).toBe(false);
    expect(report.failures).toHaveLength(10);
  });

  it('fails closed on empty output', () => {
    const report = evaluateHardening('', DEFAULT_PROFILE);
    expect(report.ok).toBe(false);
    expect(report.values).toEqual({});
    // One failure per knob: 3 capability sets, NoNewPrivs, Seccomp, uid, rootfs, socket, pids, memory.
    expect(report.failures).toHaveLength(10);
  });
});
