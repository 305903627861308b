/**
 * A server's lifecycle state: its state, the phase running (or of the last failure) and its last
 * failure. Every change of state or phase is emitted as a status event; a change of state is first
 * checked against the transition table (server-states.ts).
 */
import type { ServerPhase } from '../errors/box-error.js';
import type { ServerLog } from './server-log.js';
import { checkTransition } from './server-states.js';
import type { FailureRecord, ServerState, StatusEvent } from './types.js';

export class LifecycleState {
  /** The last failure: shown (and emitted) until a restart on request clears it. */
  error: FailureRecord | undefined;
  private current: ServerState = 'pending';
  private running: ServerPhase | undefined;

  constructor(
    private readonly name: string,
    private readonly emit: (event: StatusEvent) => void,
    /** Where an illegal transition is reported outside tests. */
    private readonly log: Pick<ServerLog, 'line'>,
  ) {}

  get state(): ServerState {
    return this.current;
  }

  get phase(): ServerPhase | undefined {
    return this.running;
  }

  setPhase(phase: ServerPhase): void {
    this.running = phase;
    this.emit({ name: this.name, state: this.current, previous: this.current, phase, at: new Date().toISOString() });
  }

  /** Ready and stopped have no phase; backoff and failed show the last failure's. */
  set(state: ServerState, phase?: ServerPhase): void {
    const previous = this.current;
    checkTransition(this.name, previous, state, (err) => this.log.line('lifecycle', `bug: ${err.message}`));
    this.current = state;
    if (phase !== undefined) this.running = phase;
    if (state === 'ready' || state === 'stopped') this.running = undefined;
    if (state === 'backoff' || state === 'failed') this.running = this.error?.phase;
    this.emit({
      name: this.name,
      state,
      previous,
      ...(this.running === undefined ? {} : { phase: this.running }),
      ...(this.error === undefined || state === 'ready' ? {} : { error: { ...this.error } }),
      at: new Date().toISOString(),
    });
  }
}
