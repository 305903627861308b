import { describe, expect, it } from 'vitest';
import { serverStatus, type StatusFacts } from './server-status.js';
import type { FailureRecord } from './types.js';

const RECORD: FailureRecord = {
  phase: 'dep_install',
  code: 'INSTALL_FAILED',
  message: 'pip failed',
  retryable: true,
  stderrTail: 'boom',
  durationMs: 12,
  attempt: 1,
  maxAttempts: 5,
  at: '2026-01-01T00:00:00.000Z',
};

function facts(over: Partial<StatusFacts> = {}): StatusFacts {
  return {
    name: 'files',
    lifecycle: { state: 'pending', phase: undefined, error: undefined },
    clientMode: 'supervisor',
    attempt: null,
    identity: null,
    relayUrl: null,
    readyAt: undefined,
    restarts: 0,
    tools: undefined,
    installTaskId: undefined,
    ...over,
  };
}

describe('serverStatus', () => {
  it('a server that never started shows its name, state and mode only: no undefined fields', () => {
    const status = serverStatus(facts());
    expect(status).toEqual({ name: 'files', state: 'pending', relay: null, clientMode: 'supervisor', restarts: 0 });
    expect(Object.values(status)).not.toContain(undefined);
  });

  it('a ready server shows its session, identity, running process, relay, ready time and tools', () => {
    const readyAt = Date.parse('2026-01-02T03:04:05.000Z');
    const status = serverStatus(
      facts({
        lifecycle: { state: 'ready', phase: undefined, error: undefined },
        attempt: {
          session: { info: { name: 'mcp-box-default' } },
          proc: { running: true, pid: 42, startedAt: '2026-01-02T03:04:00.000Z' },
        },
        identity: { uid: 10001, workspace: '/workspace/.mcp/files' },
        relayUrl: 'ws://127.0.0.1:7000/relay/files',
        readyAt,
        restarts: 2,
        tools: 7,
        installTaskId: 'task-1',
      }),
    );
    expect(status).toEqual({
      name: 'files',
      state: 'ready',
      relay: { url: 'ws://127.0.0.1:7000/relay/files', subprotocol: 'mcp' },
      clientMode: 'supervisor',
      session: 'mcp-box-default',
      uid: 10001,
      workspace: '/workspace/.mcp/files',
      pid: 42,
      startedAt: '2026-01-02T03:04:00.000Z',
      readyAt: '2026-01-02T03:04:05.000Z',
      restarts: 2,
      tools: 7,
      installTaskId: 'task-1',
    });
  });

  it('a server in backoff shows the failed phase and a copy of its record, no pid of a process that ended', () => {
    const lifecycle = { state: 'backoff' as const, phase: 'dep_install' as const, error: RECORD };
    const status = serverStatus(
      facts({
        lifecycle,
        attempt: {
          session: { info: { name: 's' } },
          proc: { running: false, pid: 42, startedAt: '2026-01-02T03:04:00.000Z' },
        },
        readyAt: Date.now(),
      }),
    );
    expect(status.phase).toBe('dep_install');
    expect(status.error).toEqual(RECORD);
    expect(status.error).not.toBe(RECORD);
    expect(status.session).toBe('s');
    expect(status).not.toHaveProperty('pid');
    expect(status).not.toHaveProperty('startedAt');
    // Only a ready server has a ready time.
    expect(status).not.toHaveProperty('readyAt');
  });
});
