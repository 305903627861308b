import { describe, expect, it } from 'vitest';
import { checkTransition, IllegalTransitionError, isLegalTransition, TRANSITIONS } from './server-states.js';
import type { ServerState } from './types.js';

const STATES: ServerState[] = ['pending', 'starting', 'ready', 'backoff', 'failed', 'stopped'];

describe('server state transitions', () => {
  it('every state has an entry, and every target is a state', () => {
    expect(Object.keys(TRANSITIONS).sort()).toEqual([...STATES].sort());
    for (const targets of Object.values(TRANSITIONS)) for (const t of targets) expect(STATES).toContain(t);
  });

  it.each([
    ['pending', 'starting'],
    ['starting', 'ready'],
    ['starting', 'backoff'],
    ['ready', 'backoff'],
    ['ready', 'failed'],
    ['backoff', 'starting'],
    ['failed', 'starting'],
    ['stopped', 'stopped'],
  ] as const)('%s → %s is legal', (from, to) => {
    expect(isLegalTransition(from, to)).toBe(true);
    expect(() => checkTransition('x', from, to, () => undefined)).not.toThrow();
  });

  it.each([
    ['pending', 'ready'],
    ['ready', 'starting'],
    ['ready', 'ready'],
    ['backoff', 'ready'],
    ['backoff', 'failed'],
    ['failed', 'ready'],
    ['stopped', 'ready'],
    ['starting', 'starting'],
  ] as const)('%s → %s is a bug: it throws under test, naming the server and what is allowed', (from, to) => {
    expect(isLegalTransition(from, to)).toBe(false);
    const reported: IllegalTransitionError[] = [];
    expect(() => checkTransition('srv', from, to, (e) => reported.push(e))).toThrow(IllegalTransitionError);
    expect(() => checkTransition('srv', from, to, () => undefined)).toThrow(
      `illegal state transition of "srv": ${from} → ${to}`,
    );
    expect(reported).toEqual([]);
  });

  it('outside tests an illegal transition is reported, not thrown', () => {
    const saved = { vitest: process.env.VITEST, env: process.env.NODE_ENV };
    delete process.env.VITEST;
    process.env.NODE_ENV = 'production';
    try {
      const reported: string[] = [];
      expect(() => checkTransition('srv', 'ready', 'starting', (e) => reported.push(e.message))).not.toThrow();
      expect(reported).toEqual([
        'illegal state transition of "srv": ready → starting (allowed from ready: backoff, failed, stopped)',
      ]);
    } finally {
      if (saved.vitest !== undefined) process.env.VITEST = saved.vitest;
      if (saved.env === undefined) delete process.env.NODE_ENV;
      else process.env.NODE_ENV = saved.env;
    }
  });
});
