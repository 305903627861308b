import { describe, expect, it } from 'vitest';
import { createLogger } from '../log/logger.js';
import { capabilityPath, newCapability, redactCapabilities } from './capability-url.js';

describe('relay capabilities', () => {
  it('are 256 random bits, URL-safe, never the same twice', () => {
    const seen = new Set(Array.from({ length: 1000 }, () => newCapability()));
    expect(seen.size).toBe(1000);
    for (const c of seen) expect(c).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('are replaced in text wherever their path appears, and nothing else is', () => {
    const cap = newCapability();
    const url = `ws://127.0.0.1:5410${capabilityPath(cap)}`;
    expect(redactCapabilities(`connect to ${url}?takeover=1 failed; again ${url}`)).toBe(
      'connect to ws://127.0.0.1:5410/v1/relay/[capability]?takeover=1 failed; again ' +
        'ws://127.0.0.1:5410/v1/relay/[capability]',
    );
    expect(redactCapabilities('/v1/relay/short and /v1/servers/x')).toBe('/v1/relay/short and /v1/servers/x');
  });

  it("never reach serve's log, in the message or in a field, text or JSON", () => {
    const cap = newCapability();
    for (const format of ['text', 'json'] as const) {
      const lines: string[] = [];
      const log = createLogger({ format, level: 'debug', write: (l) => lines.push(l) });
      log.warn(`upgrade failed for /v1/relay/${cap}`, { url: `ws://h${capabilityPath(cap)}` });
      expect(lines.join('\n')).not.toContain(cap);
      expect(lines.join('\n')).toContain('/v1/relay/[capability]');
    }
  });
});
