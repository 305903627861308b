import { describe, expect, it } from 'vitest';
import { BoxError, type ErrorCode, type ServerPhase } from '../errors/box-error.js';
import type { Failure } from './failure-record.js';
import { RetryBudget } from './retry-budget.js';
import type { FailureRecord } from './types.js';

const settings = {
  maxRestarts: 3,
  windowMs: 60_000,
  backoffInitialMs: 100,
  backoffMaxMs: 1000,
  healthyAfterMs: 10_000,
};
const failure = (code: ErrorCode, phase: ServerPhase = 'runtime', message = 'boom', counts?: boolean): Failure => ({
  error: new BoxError(code, phase, message),
  ...(counts === undefined ? {} : { counts }),
});
const recordOf =
  (f: Failure) =>
  (retryable: boolean): FailureRecord => ({
    phase: f.error.phase as ServerPhase,
    code: f.error.code,
    message: f.error.message,
    retryable,
    stderrTail: '',
    durationMs: 0,
    attempt: 0,
    maxAttempts: 0,
    at: '',
  });

describe('RetryBudget', () => {
  it('retries with backoff until the budget is spent, then stops; the record says attempt and maxAttempts', () => {
    const budget = new RetryBudget(settings, () => 1);
    const delays: number[] = [];
    let now = 0;
    for (let i = 0; i < 3; i++) {
      const f = failure('PROCESS_EXITED', 'runtime', `crash ${i}`);
      const d = budget.decide(f, recordOf(f), { wasReady: true, containerId: 'c1', now: (now += 10) });
      expect(d.retry).toBe(true);
      expect(d.record).toMatchObject({ attempt: i + 1, maxAttempts: 4, retryable: true });
      expect(d.record.nextRetryAt).toBe(new Date(now + d.delayMs).toISOString());
      delays.push(d.delayMs);
    }
    expect(delays).toEqual([100, 200, 400]);
    const f = failure('PROCESS_EXITED', 'runtime', 'crash 4');
    const last = budget.decide(f, recordOf(f), { wasReady: true, containerId: 'c1', now: (now += 10) });
    expect(last.retry).toBe(false);
    expect(last.record.nextRetryAt).toBeUndefined();
  });

  it('a non-retryable code never retries', () => {
    const budget = new RetryBudget(settings);
    const f = failure('HOST_PATH_DENIED', 'workspace_stage');
    const d = budget.decide(f, recordOf(f), { wasReady: false, containerId: null });
    expect(d).toMatchObject({ retry: false, record: { retryable: false } });
  });

  it('the same start failure twice in a row stops early, with sameFailureCount; after ready it does not', () => {
    const budget = new RetryBudget(settings);
    const f = failure('PROCESS_EXITED', 'process_start', 'missing FOO');
    expect(budget.decide(f, recordOf(f), { wasReady: false, containerId: null }).retry).toBe(true);
    const second = budget.decide(f, recordOf(f), { wasReady: false, containerId: null });
    expect(second).toMatchObject({ retry: false, record: { retryable: false, sameFailureCount: 2 } });
    expect(second.record.message).toContain('the same failure 2 attempts in a row');
    const other = new RetryBudget(settings);
    other.decide(f, recordOf(f), { wasReady: true, containerId: null });
    expect(other.decide(f, recordOf(f), { wasReady: true, containerId: null }).retry).toBe(true);
  });

  it('one session death spends the budget once', () => {
    const budget = new RetryBudget({ ...settings, maxRestarts: 1 });
    const died = failure('CONTAINER_DIED');
    expect(budget.decide(died, recordOf(died), { wasReady: true, containerId: 'c1' }).record.attempt).toBe(1);
    // The same container's death seen again by the next attempt: not charged.
    const again = failure('SESSION_DEAD', 'workspace_stage');
    expect(budget.decide(again, recordOf(again), { wasReady: false, containerId: 'c1' })).toMatchObject({
      retry: true,
      record: { attempt: 1 },
    });
    // Another container's death is.
    const other = failure('CONTAINER_DIED');
    expect(budget.decide(other, recordOf(other), { wasReady: true, containerId: 'c2' })).toMatchObject({
      retry: false,
      record: { attempt: 2 },
    });
  });

  it('a session death followed by the engine going away was the engine stopping: refunded', () => {
    const budget = new RetryBudget({ ...settings, maxRestarts: 1 });
    const died = failure('CONTAINER_DIED');
    expect(budget.decide(died, recordOf(died), { wasReady: true, containerId: 'c1' }).record.attempt).toBe(1);
    const away = failure('ENGINE_UNREACHABLE', 'box_unavailable', 'gone', false);
    expect(budget.decide(away, recordOf(away), { wasReady: false, containerId: null })).toMatchObject({
      retry: true,
      record: { attempt: 1 },
    });
    const crash = failure('PROCESS_EXITED');
    // The death refunded, the engine's absence free: this crash is the first charge.
    expect(budget.decide(crash, recordOf(crash), { wasReady: true, containerId: 'c2' })).toMatchObject({
      retry: true,
      record: { attempt: 1 },
    });
  });

  it('reset() gives the whole budget back', () => {
    const budget = new RetryBudget({ ...settings, maxRestarts: 0 });
    const f = failure('PROCESS_EXITED');
    expect(budget.decide(f, recordOf(f), { wasReady: true, containerId: null }).retry).toBe(false);
    budget.reset();
    expect(budget.decide(f, recordOf(f), { wasReady: true, containerId: null }).record.attempt).toBe(1);
  });
});
