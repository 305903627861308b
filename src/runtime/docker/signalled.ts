/**
 * dockerode accepts `{ abortSignal }` (handed to docker-modem) on every call, but its typings only
 * declare option-less overloads for some methods. This binds such a method with the option shape.
 */
export type SignalOpts = { abortSignal?: AbortSignal | undefined } & Record<string, unknown>;

export function signalled<R>(target: object, method: (...args: never[]) => unknown): (opts: SignalOpts) => Promise<R> {
  return (method as (opts: SignalOpts) => Promise<R>).bind(target);
}
