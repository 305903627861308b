import { setTimeout as sleep } from 'node:timers/promises';
import { BoxError, type Phase } from '../errors/box-error.js';

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export async function delay(ms: number, signal?: AbortSignal): Promise<void> {
  await sleep(ms, undefined, signal === undefined ? { ref: false } : { signal, ref: false });
}

/** A signal that aborts when `parent` aborts or after `ms` (when given), whichever comes first. */
export function deadlineSignal(ms: number | undefined, parent?: AbortSignal): AbortSignal {
  const signals: AbortSignal[] = [];
  if (parent !== undefined) signals.push(parent);
  if (ms !== undefined && Number.isFinite(ms)) signals.push(AbortSignal.timeout(Math.max(0, ms)));
  if (signals.length === 0) return new AbortController().signal;
  return signals.length === 1 ? (signals[0] as AbortSignal) : AbortSignal.any(signals);
}

/** Throws a BoxError ABORTED/TIMEOUT for `phase` when `signal` has aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, phase: Phase, what: string): void {
  if (signal?.aborted === true) throw abortError(signal, phase, what);
}

/** Converts an aborted signal into the BoxError that describes it. */
export function abortError(signal: AbortSignal, phase: Phase, what: string): BoxError {
  const reason: unknown = signal.reason;
  if (reason instanceof BoxError) return reason;
  const timedOut = reason instanceof Error && reason.name === 'TimeoutError';
  return timedOut
    ? new BoxError('TIMEOUT', phase, `${what} timed out`, { cause: reason })
    : new BoxError('ABORTED', phase, `${what} was cancelled`, { cause: reason });
}

/** Runs `fn`, turning an abort of `signal` into the BoxError for `phase`. */
export async function withAbort<T>(signal: AbortSignal | undefined, phase: Phase, what: string, fn: () => Promise<T>): Promise<T> {
  throwIfAborted(signal, phase, what);
  if (signal === undefined) return fn();
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(abortError(signal, phase, what));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([fn(), aborted]);
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
  }
}
