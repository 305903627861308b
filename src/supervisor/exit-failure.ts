/**
 * What a process's end means, as a failure: phase, code and message from its exit record. Pure:
 * the same exit record and context always give the same error.
 */
import { BoxError, SERVER_PHASES, type ErrorCode, type ServerPhase } from '../errors/box-error.js';
import type { ProcessExit } from '../runtime/types.js';
import type { ServerState } from './types.js';

/** An exit this soon after the start is a start failure (a missing module, a bad flag). */
export const EARLY_EXIT_MS = 2000;

export interface ExitContext {
  name: string;
  /** The server's state when the exit was seen. */
  state: ServerState;
  /** The phase running when the exit was seen. */
  phase: ServerPhase;
  /** The server's disk quota (the file cap a SIGXFSZ means it hit). */
  diskQuotaBytes: number;
  redact: (text: string) => string;
  /** Appended to the message ("while tool \"x\" was running"). */
  context?: string;
}

export function exitFailure(exit: ProcessExit, ctx: ExitContext): BoxError {
  const early = Date.parse(exit.endedAt) - Date.parse(exit.startedAt) < EARLY_EXIT_MS;
  const notRunnable = exit.exitCode === 126 || exit.exitCode === 127;
  const phase: ServerPhase =
    notRunnable && (early || ctx.state !== 'ready')
      ? 'process_start'
      : exit.reason === 'engine_lost'
        ? 'box_unavailable'
        : ctx.phase;
  const fileTooBig = exit.reason === 'exited' && exit.signal === 'SIGXFSZ';
  const { code, what } = fileTooBig
    ? {
        code: 'DISK_QUOTA_EXCEEDED' as const,
        what:
          `wrote a file past its disk quota of ${Math.round(ctx.diskQuotaBytes / 1024 / 1024)} MiB ` +
          '(box.diskMb) and was killed by SIGXFSZ',
      }
    : describe(exit);
  const message = `"${ctx.name}" ${what}${ctx.context === undefined || ctx.context === '' ? '' : ` ${ctx.context}`}`;
  return new BoxError(code, phase, message, {
    details: { exit: { ...exit, stderrTail: ctx.redact(exit.stderrTail) } },
  });
}

function describe(exit: ProcessExit): { code: ErrorCode; what: string } {
  switch (exit.reason) {
    case 'oom':
      return { code: 'OOM_KILLED', what: 'was killed by the OOM killer (memory limit reached)' };
    case 'container_died':
      return { code: 'CONTAINER_DIED', what: 'died with its session container' };
    case 'engine_lost':
      return { code: 'ENGINE_UNREACHABLE', what: 'lost contact with the Docker engine' };
    default:
      if (exit.exitCode === 127)
        return { code: 'PROCESS_START_FAILED', what: 'could not start: command not found (exit 127)' };
      if (exit.exitCode === 126)
        return { code: 'PROCESS_START_FAILED', what: 'could not start: command not executable (exit 126)' };
      return { code: 'PROCESS_EXITED', what: `exited with ${exit.signal ?? `code ${exit.exitCode}`}` };
  }
}

/** The `{ phase, code }` the relay puts in the `data` of the answers it gives in a process's place. */
export function relayFailure(data: unknown): { phase: ServerPhase; code: ErrorCode } | null {
  if (typeof data !== 'object' || data === null) return null;
  const { phase, code } = data as { phase?: unknown; code?: unknown };
  if (typeof phase !== 'string' || typeof code !== 'string' || !(SERVER_PHASES as readonly string[]).includes(phase))
    return null;
  return { phase: phase as ServerPhase, code: code as ErrorCode };
}
