import { describe, expect, it } from 'vitest';
import { configSchema } from './schema.js';

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
