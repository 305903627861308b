import { describe, expect, it } from 'vitest';
import type { ProcessExit } from '../runtime/types.js';
import { exitFailure, relayFailure, type ExitContext } from './exit-failure.js';

const started = '2026-01-01T00:00:00.000Z';
const exit = (over: Partial<ProcessExit> & { afterMs?: number }): ProcessExit =>
  ({
    exitCode: 1,
    signal: null,
    reason: 'exited',
    oomKilled: false,
    stoppedBy: null,
    stderrTail: '',
    startedAt: started,
    endedAt: new Date(Date.parse(started) + (over.afterMs ?? 10_000)).toISOString(),
    ...over,
  }) as ProcessExit;
const ctx = (over: Partial<ExitContext> = {}): ExitContext => ({
  name: 's',
  state: 'ready',
  phase: 'runtime',
  diskQuotaBytes: 32 * 1024 * 1024,
  redact: (t) => t.replaceAll('hunter2', '***'),
  ...over,
});

describe('exitFailure', () => {
  it.each([
    {
      name: 'an exit code',
      exit: exit({ exitCode: 3 }),
      code: 'PROCESS_EXITED',
      phase: 'runtime',
      message: '"s" exited with code 3',
    },
    {
      name: 'a signal',
      exit: exit({ exitCode: 143, signal: 'SIGTERM' }),
      code: 'PROCESS_EXITED',
      phase: 'runtime',
      message: '"s" exited with SIGTERM',
    },
    {
      name: 'OOM',
      exit: exit({ exitCode: 137, signal: 'SIGKILL', reason: 'oom', oomKilled: true }),
      code: 'OOM_KILLED',
      phase: 'runtime',
      message: '"s" was killed by the OOM killer (memory limit reached)',
    },
    {
      name: 'a dead container',
      exit: exit({ exitCode: null, reason: 'container_died' }),
      code: 'CONTAINER_DIED',
      phase: 'runtime',
      message: '"s" died with its session container',
    },
    {
      name: 'engine lost',
      exit: exit({ exitCode: null, reason: 'engine_lost' }),
      code: 'ENGINE_UNREACHABLE',
      phase: 'box_unavailable',
      message: '"s" lost contact with the Docker engine',
    },
    {
      name: 'command not found, early',
      exit: exit({ exitCode: 127, afterMs: 100 }),
      code: 'PROCESS_START_FAILED',
      phase: 'process_start',
      message: '"s" could not start: command not found (exit 127)',
    },
    {
      name: 'not executable, early',
      exit: exit({ exitCode: 126, afterMs: 100 }),
      code: 'PROCESS_START_FAILED',
      phase: 'process_start',
      message: '"s" could not start: command not executable (exit 126)',
    },
    {
      name: 'SIGXFSZ',
      exit: exit({ exitCode: 153, signal: 'SIGXFSZ' }),
      code: 'DISK_QUOTA_EXCEEDED',
      phase: 'runtime',
      message: '"s" wrote a file past its disk quota of 32 MiB (box.diskMb) and was killed by SIGXFSZ',
    },
  ])('$name → $code in $phase', ({ exit: e, code, phase, message }) => {
    const err = exitFailure(e, ctx());
    expect(err).toMatchObject({ code, phase, message });
  });

  it('exit 127 of a ready server after the early window keeps the running phase but says start failure', () => {
    expect(exitFailure(exit({ exitCode: 127 }), ctx({ state: 'ready', phase: 'runtime' }))).toMatchObject({
      code: 'PROCESS_START_FAILED',
      phase: 'runtime',
    });
    expect(exitFailure(exit({ exitCode: 127 }), ctx({ state: 'starting', phase: 'mcp_init' }))).toMatchObject({
      phase: 'process_start',
    });
  });

  it('the phase is the one that was running; context is appended; the stderr tail in details is redacted', () => {
    const err = exitFailure(
      exit({ exitCode: 2, stderrTail: 'token hunter2 rejected' }),
      ctx({ phase: 'mcp_init', state: 'starting', context: 'while tool "x" was running' }),
    );
    expect(err.phase).toBe('mcp_init');
    expect(err.message).toBe('"s" exited with code 2 while tool "x" was running');
    expect((err.details.exit as ProcessExit).stderrTail).toBe('token *** rejected');
  });

  it('a SIGXFSZ of a process stopped on request is not a quota failure', () => {
    expect(exitFailure(exit({ exitCode: 153, signal: 'SIGXFSZ', reason: 'stopped' }), ctx()).code).toBe(
      'PROCESS_EXITED',
    );
  });
});

describe('relayFailure', () => {
  it.each([
    { data: { phase: 'runtime', code: 'STDOUT_CLOSED' }, out: { phase: 'runtime', code: 'STDOUT_CLOSED' } },
    { data: { phase: 'nowhere', code: 'X' }, out: null },
    { data: { phase: 'runtime' }, out: null },
    { data: 'text', out: null },
    { data: null, out: null },
  ])('$data → $out', ({ data, out }) => {
    expect(relayFailure(data)).toEqual(out);
  });
});
