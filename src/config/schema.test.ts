import { describe, expect, it } from 'vitest';
import { PROFILE_RANGES, resolveProfile, type ProfileRange } from '../runtime/profile.js';
import { configSchema } from './schema.js';
import { assertServerName, isServerName } from './server-name.js';

describe('configSchema: server', () => {
  it('accepts maxBodyBytes and headersTimeoutMs in range', () => {
    const parsed = configSchema.parse({ server: { maxBodyBytes: 2 * 1024 * 1024, headersTimeoutMs: 1000 } });
    expect(parsed.server).toEqual({ maxBodyBytes: 2 * 1024 * 1024, headersTimeoutMs: 1000 });
  });

  it.each([
    [{ maxBodyBytes: 10 }, 'maxBodyBytes'],
    [{ maxBodyBytes: 1.5 }, 'maxBodyBytes'],
    [{ maxBodyBytes: 2 * 1024 * 1024 * 1024 }, 'maxBodyBytes'],
    [{ headersTimeoutMs: 0 }, 'headersTimeoutMs'],
    [{ headersTimeoutMs: 3_600_000 }, 'headersTimeoutMs'],
  ])('rejects %j', (server, field) => {
    const result = configSchema.safeParse({ server });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.path).toEqual(['server', field]);
  });
});

describe('profile ranges: the schema and resolveProfile agree (one source, runtime/profile.ts)', () => {
  const cases = Object.entries(PROFILE_RANGES).flatMap(([field, range]) => {
    const r: ProfileRange = range;
    const values = [
      r.min - 1,
      r.min,
      r.min + 0.5,
      r.min + 1,
      ...(r.max === undefined ? [r.min * 1000 + 1] : [r.max, r.max + 1]),
    ];
    return values.map((value) => ({ field, value }));
  });
  it.each(cases)('$field = $value', ({ field, value }) => {
    const inSchema = configSchema.safeParse({ box: { [field]: value } }).success;
    const inLimits = configSchema.safeParse({ box: { limits: { [field]: value } } }).success;
    let inProfile = true;
    try {
      resolveProfile({ [field]: value });
    } catch {
      inProfile = false;
    }
    expect({ inSchema, inLimits }).toEqual({ inSchema: inProfile, inLimits: inProfile });
  });
});

describe('server names: one rule (config/server-name.ts)', () => {
  it.each(['a', 'weather', 'a.b-c_d', 'x'.repeat(64)])('%s is a name', (name) => {
    expect(isServerName(name)).toBe(true);
    expect(configSchema.safeParse({ mcpServers: { [name]: { command: 'node' } } }).success).toBe(true);
  });
  it.each(['', '-a', '.a', 'a/b', 'a b', 'x'.repeat(65)])('%j is not', (name) => {
    expect(isServerName(name)).toBe(false);
    expect(configSchema.safeParse({ mcpServers: { [name]: { command: 'node' } } }).success).toBe(false);
    expect(() => assertServerName(name)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', phase: 'config' }),
    );
  });
});
