import { describe, expect, it } from 'vitest';
import { Redactor, secretValues } from './redactor.js';

describe('redaction', () => {
  it('treats only values of secret-named keys (and named ones) as secrets', () => {
    const env = {
      PROBE_MODE: 'crash',
      API_KEY: 'k-123456',
      DB_PASSWORD: 'hunter22',
      GITHUB_TOKEN: 'ghp_abcdef',
      LOG_LEVEL: 'debug',
      CUSTOM: 'custom-value',
    };
    expect(secretValues(env).sort()).toEqual(['ghp_abcdef', 'hunter22', 'k-123456']);
    expect(secretValues(env, ['CUSTOM'])).toContain('custom-value');
    const r = new Redactor(secretValues(env));
    expect(r.redact('"crash" exited with code 3; probe: crashing on purpose')).toBe(
      '"crash" exited with code 3; probe: crashing on purpose',
    );
  });

  it('redacts URL-encoded and base64 forms, at every alignment inside a longer text', () => {
    const secret = 'p@ss w/rd:s3cr3t!';
    const r = new Redactor([secret]);
    expect(r.redact(`https://u:${encodeURIComponent(secret)}@host/`)).not.toContain(encodeURIComponent(secret));
    for (const prefix of ['', 'a', 'ab', 'abc', 'user:']) {
      const b64 = Buffer.from(`${prefix}${secret}tail`).toString('base64');
      const out = r.redact(`Authorization: Basic ${b64}`);
      expect(out, prefix).toContain('***');
      // Nothing left that decodes back to the secret.
      expect(
        Buffer.from(out.replace('Authorization: Basic ', '').replace('***', ''), 'base64').toString('latin1'),
      ).not.toContain(secret);
    }
  });

  it('redacts every string inside details, keeping the shape', () => {
    const r = new Redactor(['sekrit-value-1234']);
    expect(
      r.redactDeep({ exit: { stderrTail: 'x sekrit-value-1234 y', exitCode: 1 }, list: ['sekrit-value-1234'] }),
    ).toEqual({ exit: { stderrTail: 'x *** y', exitCode: 1 }, list: ['***'] });
  });

  it('knows the longest redacted form (streams keep that much back at a cut)', () => {
    expect(new Redactor(['abcd']).maxLength).toBeGreaterThanOrEqual(4);
    expect(new Redactor([]).maxLength).toBe(0);
  });
});
