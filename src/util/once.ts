/**
 * Memoises an async function's first call: later calls get the same promise whatever their
 * arguments (idempotent close/stop; the first caller's options win).
 */
export function once<A extends unknown[], T>(fn: (...args: A) => Promise<T>): (...args: A) => Promise<T> {
  let promise: Promise<T> | undefined;
  return (...args: A) => (promise ??= fn(...args));
}
