import { describe, expect, it } from 'vitest';
import { RestartPolicy } from './restart-policy.js';

const settings = {
  maxRestarts: 2,
  windowMs: 60_000,
  backoffInitialMs: 100,
  backoffMaxMs: 1000,
  healthyAfterMs: 30_000,
};

describe('restart policy', () => {
  it('retries maxRestarts times within the window, with growing backoff, then stops', () => {
    const p = new RestartPolicy(settings, () => 1);
    expect(p.onFailure(0, { retryable: true })).toMatchObject({
      retry: true,
      attempt: 1,
      maxAttempts: 3,
      delayMs: 100,
    });
    expect(p.onFailure(10, { retryable: true })).toMatchObject({ retry: true, attempt: 2, delayMs: 200 });
    expect(p.onFailure(20, { retryable: true })).toMatchObject({ retry: false, attempt: 3, delayMs: 0 });
  });

  it('does not spend the budget on failures that do not count', () => {
    const p = new RestartPolicy(settings, () => 1);
    for (let i = 0; i < 10; i++)
      expect(p.onFailure(i, { retryable: true, counts: false })).toMatchObject({ retry: true, attempt: 1 });
  });

  it('gives the last spent failure back on refund', () => {
    const p = new RestartPolicy(settings, () => 1);
    p.onFailure(0, { retryable: true });
    p.onFailure(1, { retryable: true });
    p.refundLast();
    expect(p.onFailure(2, { retryable: true, counts: false })).toMatchObject({ retry: true, attempt: 1 });
    expect(p.onFailure(3, { retryable: true })).toMatchObject({ retry: true, attempt: 2 });
  });

  it('gives the whole budget back after a healthy period, and on reset', () => {
    const p = new RestartPolicy(settings, () => 1);
    p.onFailure(0, { retryable: true });
    p.onFailure(1, { retryable: true });
    p.onReady(2);
    expect(p.onFailure(2 + 30_000, { retryable: true })).toMatchObject({ retry: true, attempt: 1 });
    p.onFailure(30_003, { retryable: true });
    p.reset();
    expect(p.onFailure(30_004, { retryable: true })).toMatchObject({ attempt: 1 });
  });

  it('never retries a non-retryable failure', () => {
    expect(new RestartPolicy(settings).onFailure(0, { retryable: false })).toMatchObject({ retry: false, attempt: 1 });
  });
});
