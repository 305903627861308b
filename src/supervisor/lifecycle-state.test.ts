import { describe, expect, it } from 'vitest';
import { LifecycleState } from './lifecycle-state.js';
import { IllegalTransitionError } from './server-states.js';
import type { FailureRecord, StatusEvent } from './types.js';

const RECORD = { phase: 'mcp_init', code: 'MCP_INIT_TIMEOUT', message: 'no answer' } as FailureRecord;

function lifecycle(): { state: LifecycleState; events: StatusEvent[] } {
  const events: StatusEvent[] = [];
  const state = new LifecycleState('srv', (e) => events.push(e), { line: () => undefined });
  return { state, events };
}

describe('LifecycleState', () => {
  it('emits each change of state with the previous one, and each phase in the same state', () => {
    const { state, events } = lifecycle();
    state.set('starting', 'box_unavailable');
    state.setPhase('session_create');
    state.set('ready');
    expect(events.map(({ state: s, previous, phase }) => ({ s, previous, phase }))).toEqual([
      { s: 'starting', previous: 'pending', phase: 'box_unavailable' },
      { s: 'starting', previous: 'starting', phase: 'session_create' },
      { s: 'ready', previous: 'starting', phase: undefined },
    ]);
    expect(state.state).toBe('ready');
    expect(state.phase).toBeUndefined();
  });

  it('backoff and failed show the phase of the last failure and its record; ready shows no record', () => {
    const { state, events } = lifecycle();
    state.set('starting', 'box_unavailable');
    state.setPhase('mcp_init');
    state.error = RECORD;
    state.set('backoff');
    expect(state.phase).toBe('mcp_init');
    expect(events.at(-1)).toMatchObject({ state: 'backoff', phase: 'mcp_init', error: RECORD });
    expect(events.at(-1)?.error).not.toBe(RECORD);
    state.set('starting', 'box_unavailable');
    state.set('ready');
    expect(events.at(-1)).not.toHaveProperty('error');
    state.set('stopped');
    expect(state.phase).toBeUndefined();
    expect(events.at(-1)).toMatchObject({ state: 'stopped', error: RECORD });
  });

  it('an illegal transition throws under test and changes nothing', () => {
    const { state, events } = lifecycle();
    expect(() => state.set('ready')).toThrow(IllegalTransitionError);
    expect(state.state).toBe('pending');
    expect(events).toEqual([]);
  });
});
