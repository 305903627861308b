import { describe, expect, it } from 'vitest';
import { BoxError } from '../errors/box-error.js';
import { DEFAULT_PROFILE, DEFAULT_SANDBOX_IMAGE, profileHash, resolveProfile } from './profile.js';
import type { SessionProfile } from './types.js';

function invalid(partial: Record<string, unknown>): BoxError {
  try {
    resolveProfile(partial as Partial<SessionProfile>);
  } catch (err) {
    if (err instanceof BoxError) return err;
    throw err;
  }
  throw new Error('resolveProfile did not throw');
}

describe('resolveProfile', () => {
  it('returns the defaults when nothing is given', () => {
    expect(resolveProfile()).toEqual({
      image: DEFAULT_SANDBOX_IMAGE,
      network: 'on',
      cpus: 1,
      memoryMb: 1536,
      pidsLimit: 256,
      readOnlyRootfs: true,
      tmpfsMb: 64,
    });
    expect(resolveProfile({})).toEqual(DEFAULT_PROFILE);
  });

  it('returns a copy, never the shared default object', () => {
    const p = resolveProfile();
    expect(p).not.toBe(DEFAULT_PROFILE);
    p.cpus = 8;
    expect(DEFAULT_PROFILE.cpus).toBe(1);
  });

  it.each([
    { image: 'alpine:3' },
    { network: 'off' },
    { cpus: 0.5 },
    { cpus: 64 },
    { memoryMb: 64 },
    { pidsLimit: 16 },
    { readOnlyRootfs: false },
    { tmpfsMb: 1 },
  ] satisfies Partial<SessionProfile>[])('overrides %o and keeps the other defaults', (partial) => {
    expect(resolveProfile(partial)).toEqual({ ...DEFAULT_PROFILE, ...partial });
  });

  it('treats undefined fields as "use the default"', () => {
    expect(resolveProfile({ image: undefined, cpus: undefined, network: undefined })).toEqual(DEFAULT_PROFILE);
  });

  it.each([
    { name: 'empty image', partial: { image: '' }, field: /image must be a non-empty string/ },
    { name: 'blank image', partial: { image: '   ' }, field: /image must be a non-empty string/ },
    { name: 'non-string image', partial: { image: 42 }, field: /image must be a non-empty string/ },
    { name: 'bad network', partial: { network: 'host' }, field: /network must be "on" or "off", got "host"/ },
    { name: 'boolean network', partial: { network: true }, field: /network must be "on" or "off"/ },
    { name: 'zero cpus', partial: { cpus: 0 }, field: /cpus must be > 0 and <= 64, got 0/ },
    { name: 'negative cpus', partial: { cpus: -1 }, field: /cpus must be/ },
    { name: 'too many cpus', partial: { cpus: 65 }, field: /cpus must be > 0 and <= 64, got 65/ },
    { name: 'NaN cpus', partial: { cpus: Number.NaN }, field: /cpus must be/ },
    { name: 'too little memory', partial: { memoryMb: 63 }, field: /memoryMb must be an integer >= 64, got 63/ },
    { name: 'fractional memory', partial: { memoryMb: 100.5 }, field: /memoryMb must be an integer/ },
    { name: 'too few pids', partial: { pidsLimit: 15 }, field: /pidsLimit must be an integer >= 16, got 15/ },
    { name: 'fractional pids', partial: { pidsLimit: 32.5 }, field: /pidsLimit must be an integer/ },
    { name: 'zero tmpfs', partial: { tmpfsMb: 0 }, field: /tmpfsMb must be an integer >= 1, got 0/ },
    { name: 'fractional tmpfs', partial: { tmpfsMb: 1.5 }, field: /tmpfsMb must be an integer/ },
  ])('rejects $name with INVALID_ARGUMENT in session_create naming the field', ({ partial, field }) => {
    const err = invalid(partial);
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.phase).toBe('session_create');
    expect(err.message).toMatch(/^Invalid session profile: /);
    expect(err.message).toMatch(field);
    expect(err.details.problems).toHaveLength(1);
  });

  it('reports every problem at once', () => {
    const err = invalid({ image: '', cpus: 0, memoryMb: 1, pidsLimit: 1, tmpfsMb: 0, network: 'x' });
    expect(err.details.problems).toHaveLength(6);
    for (const field of ['image', 'network', 'cpus', 'memoryMb', 'pidsLimit', 'tmpfsMb'])
      expect(err.message).toContain(field);
  });
});

describe('profileHash', () => {
  it('is 12 lowercase hex characters', () => {
    expect(profileHash(DEFAULT_PROFILE)).toMatch(/^[0-9a-f]{12}$/);
  });

  it('is stable for equal profiles regardless of key order', () => {
    const reversed = Object.fromEntries(Object.entries(DEFAULT_PROFILE).reverse()) as unknown as SessionProfile;
    expect(Object.keys(reversed)).not.toEqual(Object.keys(DEFAULT_PROFILE));
    expect(profileHash(reversed)).toBe(profileHash(DEFAULT_PROFILE));
    expect(profileHash({ ...DEFAULT_PROFILE })).toBe(profileHash(DEFAULT_PROFILE));
    expect(profileHash(resolveProfile({}))).toBe(profileHash(DEFAULT_PROFILE));
  });

  it.each([
    { image: 'other:latest' },
    { network: 'off' },
    { cpus: 2 },
    { cpus: 1.0000001 },
    { memoryMb: 1537 },
    { pidsLimit: 257 },
    { readOnlyRootfs: false },
    { tmpfsMb: 65 },
  ] satisfies Partial<SessionProfile>[])('differs when %o differs', (change) => {
    expect(profileHash({ ...DEFAULT_PROFILE, ...change })).not.toBe(profileHash(DEFAULT_PROFILE));
  });

  it('gives distinct hashes for every single-field variant', () => {
    const variants: SessionProfile[] = [
      DEFAULT_PROFILE,
      { ...DEFAULT_PROFILE, cpus: 2 },
      { ...DEFAULT_PROFILE, memoryMb: 2 * 1536 },
      { ...DEFAULT_PROFILE, pidsLimit: 2 },
      { ...DEFAULT_PROFILE, tmpfsMb: 2 },
    ];
    expect(new Set(variants.map(profileHash)).size).toBe(variants.length);
  });
});
