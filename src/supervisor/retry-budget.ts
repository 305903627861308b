/**
 * Whether, and when, a server is tried again after a failure — one place for everything that
 * decides it: codes that never retry, the restart policy (budget in a window, backoff with jitter,
 * the budget back after a healthy period), the same start failure twice in a row, and session
 * deaths that spend the budget once (refunded when the engine turns out to have stopped).
 */
import type { RestartSettings } from '../config/resolve-server.js';
import type { ErrorCode } from '../errors/box-error.js';
import type { Failure } from './failure-record.js';
import { RepeatedFailures } from './repeated-failure.js';
import { RestartPolicy } from './restart-policy.js';
import { DeathCharges } from './session-death.js';
import type { FailureRecord } from './types.js';

/** Failures no retry can fix: the config, the host folder, the image or the engine's hardening. */
export const NON_RETRYABLE = new Set<ErrorCode>([
  'BOX_DISABLED',
  'HOST_PATH_DENIED',
  'INVALID_ARGUMENT',
  'INVALID_REQUIREMENT',
  'STAGE_LIMIT_EXCEEDED',
  'IMAGE_MISSING',
  'HARDENING_CHECK_FAILED',
]);

export interface RetryDecision {
  retry: boolean;
  delayMs: number;
  /** The failure record with what happens next (attempt, maxAttempts, nextRetryAt, …). */
  record: FailureRecord;
}

export class RetryBudget {
  private readonly policy: RestartPolicy;
  private readonly repeated = new RepeatedFailures();
  private readonly deaths = new DeathCharges();

  constructor(settings: RestartSettings, random: () => number = Math.random) {
    this.policy = new RestartPolicy(settings, random);
  }

  get maxAttempts(): number {
    return this.policy.maxAttempts;
  }

  onReady(now: number): void {
    this.policy.onReady(now);
    this.repeated.reset();
  }

  /** A manual restart: the whole budget back. */
  reset(): void {
    this.policy.reset();
    this.repeated.reset();
  }

  /**
   * Decides after `failure`. `record(retryable)` builds its record; `wasReady`: the attempt had
   * reached ready (a start failure repeated is judged only among start failures);
   * `containerId`: the session the attempt ran in.
   */
  decide(
    failure: Failure,
    record: (retryable: boolean) => FailureRecord,
    at: { wasReady: boolean; containerId: string | null; now?: number },
  ): RetryDecision {
    const now = at.now ?? Date.now();
    const { counts, refundLast } = this.deaths.counts(failure.error, at.containerId, failure.counts !== false);
    if (refundLast) this.policy.refundLast();
    let retryable = !NON_RETRYABLE.has(failure.error.code);
    const first = record(retryable);
    // A start attempt that failed exactly as the one before cannot succeed by trying again.
    const sameInARow = at.wasReady ? (this.repeated.reset(), 0) : this.repeated.observe(first);
    const hopeless = retryable && this.repeated.exhausted(sameInARow);
    if (hopeless) retryable = false;
    const decision = this.policy.onFailure(now, { retryable, counts });
    const nextRetryAt = decision.retry ? new Date(now + decision.delayMs).toISOString() : undefined;
    return {
      retry: decision.retry,
      delayMs: decision.delayMs,
      record: {
        ...first,
        ...(hopeless
          ? {
              message:
                `${first.message} (the same failure ${sameInARow} attempts in a row: ` +
                'not retrying; fix the cause, then restart the server)',
              sameFailureCount: sameInARow,
            }
          : {}),
        retryable,
        attempt: decision.attempt,
        maxAttempts: decision.maxAttempts,
        ...(nextRetryAt === undefined ? {} : { nextRetryAt }),
      },
    };
  }
}
