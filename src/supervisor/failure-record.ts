/**
 * A failure as the API shows it (BRIEF §2): phase, code, redacted message, exit facts, a bounded
 * stderr tail, and what happens next. Pure.
 */
import type { BoxError, ServerPhase } from '../errors/box-error.js';
import type { ProcessExit } from '../runtime/types.js';
import type { FailureRecord } from './types.js';

export const STDERR_TAIL_LINES = 40;
export const STDERR_TAIL_BYTES = 16 * 1024;

/** Why an attempt ended. */
export interface Failure {
  error: BoxError;
  exit?: ProcessExit;
  /** Failures that do not spend the restart budget (the engine was away). */
  counts?: boolean;
}

export interface RecordContext {
  /** The phase that was running (used when the error's own phase is not a server phase). */
  phase: ServerPhase | undefined;
  redact: (text: string) => string;
  /** The server's recent stderr, for failures that carry no exit record. */
  stderrTail: () => string;
  retryable: boolean;
  attempt: number;
  maxAttempts: number;
  startedAt: number;
  nextRetryAt?: string;
  now?: number;
}

export function failureRecord(failure: Failure, ctx: RecordContext): FailureRecord {
  const now = ctx.now ?? Date.now();
  const exit = failure.exit ?? (failure.error.details.exit as ProcessExit | undefined);
  const own = failure.error.phase;
  const phase = (
    own === 'config' || own === 'image' || own === 'shutdown' ? (ctx.phase ?? 'runtime') : own
  ) as ServerPhase;
  const tail = exit === undefined ? ctx.stderrTail() : exit.stderrTail.split('\n').slice(-STDERR_TAIL_LINES).join('\n');
  return {
    phase,
    code: failure.error.code,
    message: ctx.redact(failure.error.message),
    retryable: ctx.retryable,
    ...(exit === undefined ? {} : { exitCode: exit.exitCode, signal: exit.signal, oomKilled: exit.oomKilled }),
    stderrTail: boundedTail(ctx.redact(tail)),
    durationMs: now - ctx.startedAt,
    attempt: ctx.attempt,
    maxAttempts: ctx.maxAttempts,
    ...(ctx.nextRetryAt === undefined ? {} : { nextRetryAt: ctx.nextRetryAt }),
    at: new Date(now).toISOString(),
  };
}

/** A failure record's stderr tail: its last STDERR_TAIL_BYTES, starting at a line. */
export function boundedTail(text: string): string {
  if (text.length <= STDERR_TAIL_BYTES) return text;
  const tail = text.slice(-STDERR_TAIL_BYTES);
  const newline = tail.indexOf('\n');
  return newline === -1 || newline > STDERR_TAIL_BYTES / 2 ? tail : tail.slice(newline + 1);
}

/** What a record takes of the server it is of: the phase running now, its redaction, its stderr log. */
export interface RecordedServer {
  phase(): ServerPhase | undefined;
  redact: (text: string) => string;
  log: { tail(source: 'stderr', lines: number): string[] };
}

/** `failure` as `server`'s record: with its running phase, redacted, its stderr tail when no exit has one. */
export function serverFailureRecord(
  server: RecordedServer,
  failure: Failure,
  info: Pick<RecordContext, 'retryable' | 'attempt' | 'maxAttempts' | 'startedAt'>,
): FailureRecord {
  return failureRecord(failure, {
    ...info,
    phase: server.phase(),
    redact: server.redact,
    stderrTail: () => server.log.tail('stderr', STDERR_TAIL_LINES).join('\n'),
  });
}
