import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BoxError } from '../errors/box-error.js';
import type { RelayHub } from '../relay/relay-hub.js';
import type { ManagedProcess, ProcessExit, Session } from '../runtime/types.js';
import { Attempt } from './attempt.js';
import { stamped } from './start-phases.js';

const session = { info: { name: 'sess' } } as unknown as Session;
const hub = (calls: string[]): RelayHub =>
  ({
    unregister: (_s: string, name: string, _r: unknown, reason: string) => calls.push(`unregister ${name}: ${reason}`),
  }) as unknown as RelayHub;

function fakeProc(calls: string[]): ManagedProcess {
  let running = true;
  let resolve!: (e: ProcessExit) => void;
  const exited = new Promise<ProcessExit>((r) => (resolve = r));
  return {
    get running() {
      return running;
    },
    stdin: new PassThrough(),
    stdout: new PassThrough(),
    exited,
    stop: async () => {
      calls.push('stop');
      running = false;
      const exit = { exitCode: 0, signal: null, reason: 'stopped', stoppedBy: 'eof' } as unknown as ProcessExit;
      resolve(exit);
      return exit;
    },
  } as unknown as ManagedProcess;
}

describe('Attempt', () => {
  it(
    'the first failure ends it, becomes its signal’s ' + 'reason and resolves `ended`; later ones are ignored',
    async () => {
      const a = new Attempt(session, hub([]), 's', () => undefined);
      const first = { error: new BoxError('PROCESS_EXITED', 'runtime', 'first') };
      a.fail(first);
      a.fail({ error: new BoxError('SERVER_UNRESPONSIVE', 'runtime', 'second') });
      expect(a.signal.aborted).toBe(true);
      expect(a.signal.reason).toBe(first);
      expect(a.failure).toBe(first);
      await expect(a.ended).resolves.toBe(first);
    },
  );

  it(
    'close() runs the teardown hooks, closes the client, ' + 'unregisters the relay and stops the process, once',
    async () => {
      const calls: string[] = [];
      const a = new Attempt(session, hub(calls), 's', (line) => calls.push(`log ${line}`));
      a.proc = fakeProc(calls);
      a.relay = {} as never;
      a.client = { close: async () => void calls.push('client close') } as never;
      a.onClose((reason) => calls.push(`hook: ${reason}`));
      await Promise.all([a.close('done'), a.close('again')]);
      await a[Symbol.asyncDispose]();
      expect(calls).toEqual([
        'hook: done',
        'client close',
        'unregister s: done',
        'stop',
        'log process stopped (eof, exit 0)',
      ]);
    },
  );

  it('exitSoon: the exit record within the wait, else null', async () => {
    const calls: string[] = [];
    const a = new Attempt(session, hub(calls), 's', () => undefined);
    expect(await a.exitSoon(5)).toBeNull();
    a.proc = fakeProc(calls);
    expect(await a.exitSoon(5)).toBeNull();
    void a.proc.stop();
    expect(await a.exitSoon(1000)).toMatchObject({ reason: 'stopped' });
  });
});

describe('stamped', () => {
  it(
    'an error of no particular phase gets the phase that was running; others keep theirs; ' +
      'a non-BoxError is INTERNAL_ERROR',
    () => {
      expect(stamped(new BoxError('EXEC_FAILED', 'runtime', 'x'), 'dep_install')).toMatchObject({
        code: 'EXEC_FAILED',
        phase: 'dep_install',
        message: 'x',
      });
      expect(stamped(new BoxError('STAGE_FAILED', 'workspace_stage', 'x'), 'dep_install').phase).toBe(
        'workspace_stage',
      );
      expect(stamped(new TypeError('oops'), 'process_start')).toMatchObject({
        code: 'INTERNAL_ERROR',
        phase: 'process_start',
        message: 'oops',
      });
    },
  );
});
