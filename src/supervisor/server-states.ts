/**
 * The server states and the only transitions between them. A transition not in the table is a
 * bug in the loop: it throws under test, and elsewhere is reported (and made anyway, so a
 * supervisor in production never wedges on its own bookkeeping).
 *
 *   pending ─▶ starting ─▶ ready ─▶ backoff ─▶ starting …
 *      │          │  └────────────▶ failed ──▶ starting (restart/start)
 *      └──────────┴──── any ──────▶ stopped ─▶ starting
 */

/**
 * The states of a managed server, in lifecycle order: the one list (the API filter, OpenAPI and metrics derive
 * from it).
 */
export const SERVER_STATES = ['pending', 'starting', 'ready', 'backoff', 'failed', 'stopped'] as const;
export type ServerState = (typeof SERVER_STATES)[number];

export const isServerState = (value: string): value is ServerState =>
  (SERVER_STATES as readonly string[]).includes(value);

export const TRANSITIONS: Readonly<Record<ServerState, readonly ServerState[]>> = {
  pending: ['starting', 'stopped'],
  starting: ['ready', 'backoff', 'failed', 'stopped'],
  ready: ['backoff', 'failed', 'stopped'],
  backoff: ['starting', 'stopped'],
  failed: ['starting', 'stopped'],
  stopped: ['starting', 'stopped'],
};

export class IllegalTransitionError extends Error {
  constructor(
    readonly server: string,
    readonly from: ServerState,
    readonly to: ServerState,
  ) {
    super(
      `illegal state transition of "${server}": ${from} → ${to} ` +
        `(allowed from ${from}: ${TRANSITIONS[from].join(', ')})`,
    );
    this.name = 'IllegalTransitionError';
  }
}

export function isLegalTransition(from: ServerState, to: ServerState): boolean {
  return TRANSITIONS[from].includes(to);
}

const underTest = (): boolean => process.env.VITEST !== undefined || process.env.NODE_ENV === 'test';

/** Checks `from → to`; throws under test, reports through `report` otherwise. */
export function checkTransition(
  server: string,
  from: ServerState,
  to: ServerState,
  report: (err: IllegalTransitionError) => void,
): void {
  if (isLegalTransition(from, to)) return;
  const err = new IllegalTransitionError(server, from, to);
  if (underTest()) throw err;
  report(err);
}
