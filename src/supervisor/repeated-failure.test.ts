import { describe, expect, it } from 'vitest';
import { failureSignature, RepeatedFailures, type FailureShape } from './repeated-failure.js';

const npm404: FailureShape = {
  phase: 'process_start',
  code: 'PROCESS_EXITED',
  message: '"x" exited with code 1',
  exitCode: 1,
  signal: null,
  stderrTail:
    'npm error code E404\nnpm error 404 Not Found - GET https://example.invalid/@nope%2fpkg - Not found\n' +
    'npm error A complete log of this run can be found in: ' +
    '/workspace/.mcp/s3-1a2b3c4d/cache/npm/_logs/2026-12-01T22_10_01_123Z-debug-0.log',
};

describe('repeated failures', () => {
  it('gives the same signature to attempts that differ only in numbers, ids and times', () => {
    const again = {
      ...npm404,
      stderrTail: npm404.stderrTail.replace('s3-1a2b3c4d', 's3-99ffee00').replace('22_10_01_123Z', '22_11_47_900Z'),
    };
    expect(failureSignature(again)).toBe(failureSignature(npm404));
  });

  it('tells different failures apart: other exit code, other phase, other stderr', () => {
    const base = failureSignature(npm404);
    expect(failureSignature({ ...npm404, exitCode: 2 })).not.toBe(base);
    expect(failureSignature({ ...npm404, phase: 'dep_install' })).not.toBe(base);
    // …but a process dying while it starts is one failure whichever start phase saw it.
    expect(failureSignature({ ...npm404, phase: 'mcp_init' })).toBe(base);
    expect(failureSignature({ ...npm404, stderrTail: 'KeyError: API_KEY' })).not.toBe(base);
  });

  it('never counts failures of the engine, the container or a timeout', () => {
    for (const code of [
      'ENGINE_UNREACHABLE',
      'CONTAINER_DIED',
      'SESSION_DEAD',
      'MCP_INIT_TIMEOUT',
      'OOM_KILLED',
    ] as const) {
      expect(failureSignature({ ...npm404, code })).toBeNull();
    }
  });

  it('is exhausted after two attempts in a row failing the same way, not after two different ones', () => {
    const r = new RepeatedFailures();
    expect(r.exhausted(r.observe(npm404))).toBe(false);
    expect(r.exhausted(r.observe({ ...npm404, exitCode: 2 }))).toBe(false);
    expect(r.exhausted(r.observe({ ...npm404, exitCode: 2 }))).toBe(true);
  });

  it('keeps the streak across an infrastructure failure in between, and ends it on reset', () => {
    const r = new RepeatedFailures();
    r.observe(npm404);
    expect(r.observe({ ...npm404, code: 'CONTAINER_DIED' })).toBe(0);
    expect(r.observe(npm404)).toBe(2);
    r.reset();
    expect(r.observe(npm404)).toBe(1);
  });
});
