/**
 * Failures a session's death causes. A start phase that fails because its container died (an
 * extraction cut short, an install killed with it) is SESSION_DEAD in that phase, whatever the
 * phase itself saw; one death spends the restart budget once, however many failures it causes.
 */
import { BoxError, isBoxError, type ErrorCode } from '../errors/box-error.js';
import type { Session } from '../runtime/types.js';
import type { Failure } from './failure-record.js';

/** How long a failed start phase waits for its session to show a death it may have caused. */
const SESSION_DEATH_SETTLE_MS = 1500;
/** Failures of a command run in the session: the ones a dying container causes. */
const EXEC_FAILURES = new Set<ErrorCode>([
  'STAGE_FAILED',
  'INSTALL_FAILED',
  'EXEC_FAILED',
  'EXEC_TIMEOUT',
  'PROCESS_START_FAILED',
  'CONFLICT',
  'NOT_FOUND',
  'ENGINE_ERROR',
]);
const DEATHS = new Set<ErrorCode>(['SESSION_DEAD', 'CONTAINER_DIED']);

/** `failure` as the session's death (or the engine's absence) when that is what caused it. */
export async function sessionDeathOr(failure: Failure, session: Session | undefined): Promise<Failure> {
  const { error } = failure;
  if (session === undefined || DEATHS.has(error.code) || error.code === 'ENGINE_UNREACHABLE') return failure;
  const settleMs = EXEC_FAILURES.has(error.code) ? SESSION_DEATH_SETTLE_MS : 0;
  const alive = await session
    .checkAlive({ settleMs })
    .catch((err: unknown) => (isBoxError(err) && err.code === 'ENGINE_UNREACHABLE' ? null : true));
  if (alive === true) return failure;
  if (alive === null) {
    const away = new BoxError(
      'ENGINE_UNREACHABLE',
      'box_unavailable',
      `The Docker engine went away during ${error.phase}: ${error.message}`,
      { cause: error, details: { ...error.details, phase: error.phase } },
    );
    return { ...failure, error: away, counts: false };
  }
  const dead = new BoxError(
    'SESSION_DEAD',
    error.phase,
    `The session container died during ${error.phase} (${session.diedBecause ?? 'gone'}): ${error.message}`,
    { cause: error, details: { ...error.details } },
  );
  return { ...failure, error: dead };
}

/**
 * Which failures spend the budget as far as session deaths go: the first failure a session's death
 * causes does; a later one of the same death (an exec refused by the dead container while the next
 * attempt staged) does not. A death followed by an unreachable engine was the engine stopping.
 */
export class DeathCharges {
  private chargedContainer: string | null = null;
  /** The last failure that spent the budget was a session death (refunded if the engine turns out gone). */
  private lastWasDeath = false;

  /** Whether `error` (in the session of container `containerId`) spends the budget. */
  counts(
    error: BoxError,
    containerId: string | null,
    countsOtherwise: boolean,
  ): { counts: boolean; refundLast: boolean } {
    const refundLast = error.code === 'ENGINE_UNREACHABLE' && this.lastWasDeath;
    let counts = countsOtherwise;
    if (DEATHS.has(error.code)) {
      if (containerId !== null && containerId === this.chargedContainer) counts = false;
      else this.chargedContainer = containerId;
    }
    this.lastWasDeath = counts && DEATHS.has(error.code);
    return { counts, refundLast };
  }
}
