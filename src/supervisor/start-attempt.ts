/**
 * One attempt of a server: through the start phases (start-phases.ts, client-connect.ts) up to
 * ready, and what ends it from then on: its process's exit, its closed stdout and, when the
 * supervisor holds the client, its health (health.ts). Also what an error a start threw means.
 */
import { isBoxError, BoxError, type ServerPhase } from '../errors/box-error.js';
import type { ProcessExit, Session } from '../runtime/types.js';
import { delay } from '../util/abort.js';
import { Attempt } from './attempt.js';
import { connectClient, reconnectClient } from './client-connect.js';
import { EARLY_EXIT_MS, exitFailure } from './exit-failure.js';
import type { Failure } from './failure-record.js';
import { EXIT_SETTLE_MS, startPing, watchConnection } from './health.js';
import { sessionDeathOr } from './session-death.js';
import { openSession, raceExit, stageAndStart, stamped, type StartContext } from './start-phases.js';

/** The server's slot for its current attempt: an attempt's events count only while it is the current one. */
export interface AttemptSlot {
  current(): Attempt | null;
  /** The attempt has its session: from now on it is the current one. */
  adopt(attempt: Attempt): void;
}

/** One try through the start phases; resolves, with its tool count, when the last phase passed. */
export async function startAttempt(
  ctx: StartContext,
  slot: AttemptSlot,
  signal: AbortSignal,
): Promise<{ attempt: Attempt; tools: number | undefined }> {
  const session = await openSession(ctx, signal);
  const attempt = new Attempt(session, ctx.host.relays, ctx.name, (line) => ctx.log.line('lifecycle', line));
  slot.adopt(attempt);
  const hooks = {
    onExit: (exit: ProcessExit) => onExit(ctx, slot, attempt, exit),
    onStdoutClosed: () => onStdoutClosed(ctx, slot, attempt),
  };
  await stageAndStart(ctx, attempt, hooks, signal);
  if (ctx.spec.client === 'external') {
    // Health comes from process and engine events; a command that is not there fails here.
    await raceExit(ctx, attempt, delay(Math.min(EARLY_EXIT_MS, 500), signal), EXIT_SETTLE_MS);
    return { attempt, tools: undefined };
  }
  await connectClient(ctx, attempt, signal);
  const tools = await attempt.client?.listTools(undefined, { timeout: ctx.spec.toolTimeoutMs }).catch(() => null);
  return { attempt, tools: tools?.tools.length };
}

/** For an attempt that became ready: its health watched, and an exit it had before ready reported. */
export function watchReady(ctx: StartContext, slot: AttemptSlot, attempt: Attempt): void {
  if (ctx.spec.client === 'supervisor') {
    const health = {
      name: ctx.name,
      isCurrent: () => ctx.state() === 'ready' && slot.current() === attempt,
      log: (line: string) => ctx.log.line('lifecycle', line),
    };
    startPing(attempt, ctx.spec.pingIntervalMs, health);
    watchConnection(attempt, { ...health, connect: () => reconnectClient(ctx, attempt) });
  }
  // An exit between the last phase and ready has no one else to report it.
  if (attempt.exit !== null) onExit(ctx, slot, attempt, attempt.exit);
}

/** What the process's `exit` means for the server of `ctx`, seen in `phase`. */
export function exitError(ctx: StartContext, exit: ProcessExit, phase: ServerPhase, context = ''): BoxError {
  return exitFailure(exit, {
    name: ctx.name,
    state: ctx.state(),
    phase,
    diskQuotaBytes: ctx.spec.disk.maxBytes,
    redact: ctx.redact,
    context,
  });
}

/**
 * What an error a start attempt threw means. `session` is the server's current attempt's: before
 * the attempt has its own (the first two phases), it is the previous attempt's and says nothing.
 */
export async function startFailure(ctx: StartContext, err: unknown, session: Session | undefined): Promise<Failure> {
  const phase = ctx.phase();
  // While starting, an error of no particular phase (or no BoxError: a bug) is the running phase's.
  const error =
    ctx.state() === 'starting' && phase !== undefined
      ? stamped(err, phase)
      : isBoxError(err)
        ? err
        : stamped(err, 'runtime');
  const exit = (error.details.exit as ProcessExit | undefined) ?? undefined;
  const failure = { error, ...(exit === undefined ? {} : { exit }), counts: error.code !== 'ENGINE_UNREACHABLE' };
  const own = error.phase === 'box_unavailable' || error.phase === 'session_create' ? undefined : session;
  return sessionDeathOr(failure, own);
}

function onExit(ctx: StartContext, slot: AttemptSlot, attempt: Attempt, exit: ProcessExit): void {
  if (slot.current() !== attempt) return;
  attempt.exit = exit;
  // Requests in flight fail now, not after their timeout.
  void attempt.client?.close().catch(() => undefined);
  if (ctx.state() === 'ready')
    attempt.fail({ error: exitError(ctx, exit, 'runtime'), exit, counts: exit.reason !== 'engine_lost' });
}

/** The relay found the process alive with its stdout closed: nothing it does can reach a client. */
function onStdoutClosed(ctx: StartContext, slot: AttemptSlot, attempt: Attempt): void {
  if (slot.current() !== attempt || ctx.state() !== 'ready') return;
  attempt.fail({
    error: new BoxError(
      'STDOUT_CLOSED',
      'runtime',
      `"${ctx.name}" closed its stdout but kept running (pid ${attempt.proc?.pid ?? '?'}): ` +
        'no answer can reach a client; restarting it',
    ),
  });
}
