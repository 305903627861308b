/** Turns dockerode / docker-modem failures into BoxErrors with a phase and a readable message. */
import { BoxError, describeError, type ErrorCode, type Phase } from '../../errors/box-error.js';

interface DockerLikeError {
  statusCode?: number;
  code?: string;
  json?: { message?: string } | null;
  reason?: string;
  message?: string;
}

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ENOENT',
  'EACCES',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
]);

export function isConnectionError(err: unknown): boolean {
  const code = (err as DockerLikeError | null)?.code;
  return typeof code === 'string' && CONNECTION_CODES.has(code);
}

export function statusCodeOf(err: unknown): number | undefined {
  const code = (err as DockerLikeError | null)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

/**
 * Why the engine refused an operation on a container that is no longer there to run it: 409 "is
 * not running" / "is paused" / "is restarting" (killed, stopped) or 404 "No such container"
 * (removed). Null for every other failure.
 */
export function containerGoneReason(err: unknown): string | null {
  const status = statusCodeOf(err);
  if (status !== 409 && status !== 404) return null;
  const message = engineMessage(err);
  if (status === 409 && /is not running|is paused|is restarting|is dead|marked for removal/i.test(message))
    return message;
  if (status === 404 && /no such container/i.test(message)) return message;
  return null;
}

/** The engine's own message (from the JSON body) when there is one. */
export function engineMessage(err: unknown): string {
  const e = err as DockerLikeError | null;
  const fromJson = e?.json?.message;
  if (typeof fromJson === 'string' && fromJson !== '') return fromJson;
  return describeError(err).replace(/^\(HTTP code \d+\) [a-z ]+ - /, '');
}

/**
 * Maps an engine failure of `what` to a BoxError. Unreachable engines become ENGINE_UNREACHABLE in
 * phase box_unavailable whatever the phase of the operation, because that is where the fault is.
 */
export function toBoxError(err: unknown, phase: Phase, what: string, code: ErrorCode = 'ENGINE_ERROR'): BoxError {
  if (err instanceof BoxError) return err;
  if (isConnectionError(err)) {
    return new BoxError(
      'ENGINE_UNREACHABLE',
      'box_unavailable',
      `Docker engine is unreachable while trying to ${what}: ${describeError(err)}`,
      {
        cause: err,
      },
    );
  }
  const status = statusCodeOf(err);
  const mapped: ErrorCode = status === 404 ? 'NOT_FOUND' : status === 409 ? 'CONFLICT' : code;
  return new BoxError(mapped, phase, `Failed to ${what}: ${engineMessage(err)}`, {
    cause: err,
    details: status === undefined ? {} : { statusCode: status },
  });
}
