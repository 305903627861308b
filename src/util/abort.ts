import { setTimeout as sleep } from 'node:timers/promises';
import { BoxError, type Phase } from '../errors/box-error.js';

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export async function delay(ms: number, signal?: AbortSignal): Promise<void> {
  await sleep(ms, undefined, signal === undefined ? { ref: false } : { signal, ref: false });
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

/**
 * A signal that aborts when `parent` does, and `release()`, which unlinks it (without aborting it).
 * For a call that adds an 'abort' listener to its signal and never removes it (the MCP SDK's
 * Protocol.request): give it the linked signal and release that when the call ends, so a long-lived
 * parent (a lifecycle loop's) does not collect one listener per call.
 */
export function linkedSignal(parent: AbortSignal): { signal: AbortSignal; release: () => void } {
  const controller = new AbortController();
  if (parent.aborted) {
    controller.abort(parent.reason);
    return { signal: controller.signal, release: () => undefined };
  }
  const onAbort = (): void => controller.abort(parent.reason);
  parent.addEventListener('abort', onAbort, { once: true });
  return { signal: controller.signal, release: () => parent.removeEventListener('abort', onAbort) };
}

/** `work`'s value, or null when `signal` aborts first (or has aborted). The listener goes with the race. */
export async function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T | null> {
  if (signal.aborted) return null;
  let onAbort!: () => void;
  const aborted = new Promise<null>((resolve) => (onAbort = () => resolve(null)));
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    return await Promise.race([work, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
