import { setTimeout as sleep } from 'node:timers/promises';
import { BoxError, type Phase } from '../errors/box-error.js';

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export async function delay(ms: number, signal?: AbortSignal): Promise<void> {
  await sleep(ms, undefined, signal === undefined ? { ref: false } : { signal, ref: false });
}

/**
 * A signal that aborts when `parent` aborts or after `ms` (when given), whichever comes first.
 * Built on a plain timer rather than `AbortSignal.any([parent, AbortSignal.timeout(ms)])`: Node 20
 * holds the timeout signal of such a combination weakly and may collect it (nodejs/node#57736), so
 * the deadline would silently never fire.
 */
export function deadlineSignal(ms: number | undefined, parent?: AbortSignal): AbortSignal {
  const hasDeadline = ms !== undefined && Number.isFinite(ms);
  if (!hasDeadline && parent !== undefined) return parent;
  const controller = new AbortController();
  if (parent?.aborted === true) {
    controller.abort(parent.reason);
    return controller.signal;
  }
  let timer: NodeJS.Timeout | undefined;
  const onParentAbort = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    controller.abort(parent?.reason);
  };
  parent?.addEventListener('abort', onParentAbort, { once: true });
  if (hasDeadline) {
    timer = setTimeout(() => {
      parent?.removeEventListener('abort', onParentAbort);
      controller.abort(new DOMException(`The operation timed out after ${ms} ms`, 'TimeoutError'));
    }, Math.max(0, ms as number));
    timer.unref();
  }
  return controller.signal;
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
