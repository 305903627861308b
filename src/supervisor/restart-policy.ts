/**
 * When to try again: at most `maxRestarts` failures within a sliding `windowMs`, exponential
 * backoff with jitter between attempts, and the whole budget back after `healthyAfterMs` of being
 * ready. Non-retryable failures never retry. Pure (clock and randomness injected).
 */
import type { RestartSettings } from '../config/resolve-server.js';

export interface RestartDecision {
  retry: boolean;
  /** Start attempts in the current window, this one included (1-based). */
  attempt: number;
  maxAttempts: number;
  delayMs: number;
}

export class RestartPolicy {
  private failures: number[] = [];
  private readySince: number | null = null;

  constructor(
    private readonly settings: RestartSettings,
    private readonly random: () => number = Math.random,
  ) {}

  get maxAttempts(): number {
    return this.settings.maxRestarts + 1;
  }

  /** The server became ready at `now`. */
  onReady(now: number): void {
    this.readySince = now;
  }

  /** A failure at `now`; `counts` false for failures that do not spend the budget (engine away). */
  onFailure(now: number, opts: { retryable: boolean; counts?: boolean }): RestartDecision {
    if (this.readySince !== null && now - this.readySince >= this.settings.healthyAfterMs) this.failures = [];
    this.readySince = null;
    this.failures = this.failures.filter((t) => now - t < this.settings.windowMs);
    if (opts.counts !== false) this.failures.push(now);
    const attempt = Math.max(1, this.failures.length);
    const retry = opts.retryable && this.failures.length <= this.settings.maxRestarts;
    const exponent = Math.max(0, attempt - 1);
    const base = Math.min(this.settings.backoffMaxMs, this.settings.backoffInitialMs * 2 ** exponent);
    // "Equal jitter": half fixed, half random, so retries of many servers spread out.
    const delayMs = Math.round(base / 2 + (base / 2) * this.random());
    return { retry, attempt, maxAttempts: this.maxAttempts, delayMs: retry ? delayMs : 0 };
  }

  /**
   * Gives back the most recent failure that spent the budget: it turned out to be the engine's
   * (a container death followed by an unreachable engine is the engine stopping).
   */
  refundLast(): void {
    this.failures.pop();
  }

  /** A manual restart gives the budget back. */
  reset(): void {
    this.failures = [];
    this.readySince = null;
  }
}
