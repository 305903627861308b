/**
 * The supervisor's lifecycle loop against the in-memory fake runtime (test/helpers/fake-runtime.ts):
 * states, the restart policy, the failure records. Only what callers see is asserted: `get`,
 * `history`, 'status' events, tool call results and errors, and what the fake runtime was asked
 * to do. The real-engine versions of these are in test/integration/.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BoxError, type ErrorCode } from '../errors/box-error.js';
import { FakeRuntime, type FakeExit } from '../../test/helpers/fake-runtime.js';
import { createSupervisor, type Supervisor } from './supervisor.js';
import type { FailureRecord, ServerState, ServerStatus, StatusEvent } from './types.js';

const SERVER = { command: 'node', args: ['server.js'] };
// The test's own waits use the real clock, also while a test fakes the timers of the code under test.
const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;
const START_PHASES = [
  'box_unavailable',
  'session_create',
  'workspace_stage',
  'dep_install',
  'process_start',
  'relay_connect',
  'mcp_init',
];

let fake: FakeRuntime;
let sup: Supervisor | undefined;
let events: StatusEvent[];
const folders: string[] = [];

beforeEach(() => {
  fake = new FakeRuntime();
  events = [];
});

afterEach(async () => {
  await sup?.close();
  sup = undefined;
  vi.useRealTimers();
  for (const f of folders.splice(0)) rmSync(f, { recursive: true, force: true });
});

/** A supervisor on the fake runtime with small, fast settings; `box` merges over them. */
async function supervisor(box: Record<string, unknown> = {}): Promise<Supervisor> {
  const { restart, ...rest } = box;
  sup = await createSupervisor(
    {
      box: {
        allowedRoots: [tmpdir()],
        pingIntervalSec: 0,
        diskCheckSec: 0,
        ...rest,
        restart: { backoffInitialMs: 20, backoffMaxMs: 80, ...(restart as Record<string, unknown> | undefined) },
      },
      mcpServers: {},
    },
    { runtime: fake, configDir: tmpdir() },
  );
  sup.on('status', (e) => events.push(e));
  return sup;
}

function current(): Supervisor {
  if (sup === undefined) throw new Error('no supervisor');
  return sup;
}

/** Resolves with `check()`'s value once it is defined, re-checked at every status event of `name`. */
function until<T>(name: string, check: () => T | undefined, what: string, timeoutMs = 4000): Promise<T> {
  const s = current();
  return new Promise((resolve, reject) => {
    const finish = (value: T): void => {
      realClearTimeout(timer);
      s.off('status', onStatus);
      resolve(value);
    };
    const onStatus = (e: StatusEvent): void => {
      if (e.name !== name) return;
      const value = check();
      if (value !== undefined) finish(value);
    };
    const timer = realSetTimeout(() => {
      s.off('status', onStatus);
      const seen = s
        .history(name)
        .map(
          (h) => `${h.state}${h.error === undefined ? '' : `(${h.error.phase}/${h.error.code} #${h.error.attempt})`}`,
        );
      reject(new Error(`${name}: ${what} not reached within ${timeoutMs} ms; history: ${seen.join(' → ')}`));
    }, timeoutMs);
    const now = check();
    if (now !== undefined) finish(now);
    else s.on('status', onStatus);
  });
}

/** The server's status once it is in one of `states`. */
function inState(name: string, ...states: ServerState[]): Promise<ServerStatus> {
  return until(
    name,
    () => (states.includes(current().get(name).state) ? current().get(name) : undefined),
    states.join('|'),
  );
}

/** The server's status once its history holds `n` transitions into `state`. */
function nth(name: string, state: ServerState, n: number): Promise<ServerStatus> {
  return until(
    name,
    () =>
      current()
        .history(name)
        .filter((e) => e.state === state).length >= n
        ? current().get(name)
        : undefined,
    `${state} #${n}`,
  );
}

/** The failure records of the transitions into backoff or failed, oldest first. */
function failures(name: string): FailureRecord[] {
  return current()
    .history(name)
    .filter((e) => e.state === 'backoff' || e.state === 'failed')
    .map((e) => e.error as FailureRecord);
}

function states(name: string): ServerState[] {
  return current()
    .history(name)
    .map((e) => e.state);
}

/** Ends the server's process right after each of its next `times` transitions into ready. */
function crashWhenReady(name: string, times: number, how: FakeExit = { code: 1, stderr: 'crashed\n' }): void {
  let left = times;
  current().on('status', (e) => {
    if (e.name !== name || e.state !== 'ready' || left <= 0) return;
    left--;
    setImmediate(() => fake.process(name).exit(how));
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => realSetTimeout(r, ms));

/** A host folder for a server (cleaned up after the test). */
function folder(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-box-lifecycle-'));
  folders.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

async function rejection(promise: Promise<unknown>): Promise<BoxError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(BoxError);
    return err as BoxError;
  }
  throw new Error('expected a rejection');
}

describe('states', () => {
  it('pending → starting → ready, through every start phase in order', async () => {
    const s = await supervisor();
    const first = s.add('a', SERVER);
    expect(first.state).toBe('starting');
    const ready = await inState('a', 'ready');
    // No relay port was asked for: the supervisor's client is in process, and no relay URL is offered.
    expect(ready).toMatchObject({ state: 'ready', restarts: 0, tools: 6, clientMode: 'supervisor', relay: null });
    expect(ready.pid).toBe(fake.process('a').pid);
    expect(ready.session).toBe(fake.allSessions()[0]?.info.name);
    expect(ready.uid).toBe(fake.process('a').identity.uid);
    expect(ready.error).toBeUndefined();
    expect(ready.phase).toBeUndefined();
    expect(Date.parse(ready.readyAt ?? '')).not.toBeNaN();
    expect(s.get('a').client).toBeDefined();

    expect(s.history('a').map((e) => [e.previous, e.state])).toEqual([
      ['pending', 'starting'],
      ['starting', 'ready'],
    ]);
    const phases = events.filter((e) => e.name === 'a' && e.state === 'starting').map((e) => e.phase);
    expect([...new Set(phases)]).toEqual(START_PHASES);
    // A server with no folder stages an empty workspace and installs nothing.
    expect(fake.execs.map((e) => e.kind)).toEqual(['probe', 'stage']);
    expect(await s.callTool('a', 'echo', { text: 'hello' })).toMatchObject({
      content: [{ type: 'text', text: 'hello' }],
    });
    expect((await s.listTools('a')).map((t) => t.name)).toContain('echo');
  });

  it("the install's bins come first on PATH, and a server's own PATH follows them unchanged", async () => {
    const dir = folder({ 'server.js': '', 'package.json': '{"name":"x","version":"1.0.0","dependencies":{}}' });
    const s = await supervisor();
    s.add('a', { command: 'node', args: [join(dir, 'server.js')], env: { PATH: '/opt/mine/bin:/usr/bin' } });
    const ready = await inState('a', 'ready');
    expect(fake.process('a').env.PATH).toBe(`${ready.workspace}/node_modules/.bin:/opt/mine/bin:/usr/bin`);
  });

  it('a disabled server is stopped and never started', async () => {
    const s = await supervisor();
    expect(s.add('off', { ...SERVER, disabled: true }).state).toBe('stopped');
    await sleep(30);
    expect(s.get('off').state).toBe('stopped');
    expect(fake.pings).toBe(0);
  });

  it('box.enabled false: failed in box_unavailable with BOX_DISABLED, not retried', async () => {
    const s = await supervisor({ enabled: false });
    s.add('a', SERVER);
    const failed = await inState('a', 'failed');
    expect(failed.phase).toBe('box_unavailable');
    expect(failed.error).toMatchObject({
      phase: 'box_unavailable',
      code: 'BOX_DISABLED',
      retryable: false,
      attempt: 1,
    });
    expect(failed.error?.nextRetryAt).toBeUndefined();
    expect(states('a')).toEqual(['starting', 'failed']);
    expect(fake.pings).toBe(0);
  });

  it(
    'a crash after ready: ready → backoff → starting → ready; the record has phase runtime, ' +
      'exit code, signal, stderr tail',
    async () => {
      const s = await supervisor();
      fake.script('a', (attempt) => ({ stderr: `server starting (attempt ${attempt})\n` }));
      s.add('a', SERVER);
      await inState('a', 'ready');
      fake.process('a').exit({ code: 3, stderr: 'Traceback: boom\nValueError: bad thing\n' });
      const backoff = await inState('a', 'backoff');
      expect(backoff.phase).toBe('runtime');
      expect(backoff.pid).toBeUndefined();
      expect(backoff.error).toMatchObject({
        phase: 'runtime',
        code: 'PROCESS_EXITED',
        retryable: true,
        exitCode: 3,
        signal: null,
        oomKilled: false,
        attempt: 1,
        maxAttempts: 6,
      });
      expect(backoff.error?.message).toContain('exited with code 3');
      expect(backoff.error?.stderrTail).toContain('server starting (attempt 1)');
      expect(backoff.error?.stderrTail).toContain('ValueError: bad thing');
      expect(Date.parse(backoff.error?.nextRetryAt ?? '')).toBeGreaterThanOrEqual(Date.parse(backoff.error?.at ?? ''));

      const again = await nth('a', 'ready', 2);
      expect(again).toMatchObject({ state: 'ready', restarts: 1 });
      expect(again.pid).toBe(fake.process('a').pid);
      expect(fake.processes('a')).toHaveLength(2);
      // The last failure stays visible on the ready server.
      expect(again.error).toMatchObject({ code: 'PROCESS_EXITED' });
      expect(states('a')).toEqual(['starting', 'ready', 'backoff', 'starting', 'ready']);
      // Every transition was a 'status' event; backoff carries its error.
      const transitions = events.filter((e) => e.name === 'a' && e.previous !== e.state);
      expect(transitions.map((e) => e.state)).toEqual(states('a'));
      expect(transitions.find((e) => e.state === 'backoff')?.error).toMatchObject({
        code: 'PROCESS_EXITED',
        exitCode: 3,
      });
    },
  );

  it('a crash by a signal: the exit code is 128 + n and the record names the signal', async () => {
    const s = await supervisor();
    s.add('a', SERVER);
    await inState('a', 'ready');
    fake.process('a').exit({ signal: 'SIGSEGV' });
    const backoff = await inState('a', 'backoff');
    expect(backoff.error).toMatchObject({ phase: 'runtime', code: 'PROCESS_EXITED', exitCode: 139, signal: 'SIGSEGV' });
    expect(backoff.error?.message).toContain('exited with SIGSEGV');
  });

  it('stop() → stopped (the process ended by stdin EOF), nothing restarts it; start() → starting → ready', async () => {
    const s = await supervisor();
    s.add('a', SERVER);
    await inState('a', 'ready');
    const proc = fake.process('a');
    const stopped = await s.stop('a');
    expect(stopped.state).toBe('stopped');
    expect(stopped.pid).toBeUndefined();
    expect(stopped.phase).toBeUndefined();
    expect(proc.ended).toMatchObject({ reason: 'stopped', stoppedBy: 'eof', exitCode: 0 });
    expect((await rejection(s.callTool('a', 'echo', { text: 'x' }))).code).toBe('PROCESS_NOT_RUNNING');
    await sleep(50);
    expect(s.get('a').state).toBe('stopped');
    expect(fake.processes('a')).toHaveLength(1);

    expect(s.start('a').state).toBe('starting');
    await nth('a', 'ready', 2);
    expect(states('a')).toEqual(['starting', 'ready', 'stopped', 'starting', 'ready']);
    expect(fake.processes('a')).toHaveLength(2);
  });

  it('stop() of a server that ignores stdin EOF escalates to SIGTERM', async () => {
    const s = await supervisor();
    fake.script('a', { exitOnStdinEnd: false });
    s.add('a', SERVER);
    await inState('a', 'ready');
    await s.stop('a');
    expect(fake.process('a').ended).toMatchObject({
      reason: 'stopped',
      stoppedBy: 'sigterm',
      exitCode: 143,
      signal: 'SIGTERM',
    });
  });

  it('stop() during backoff cancels the retry', async () => {
    const s = await supervisor({ restart: { backoffInitialMs: 150, backoffMaxMs: 150 } });
    s.add('a', SERVER);
    await inState('a', 'ready');
    fake.process('a').exit({ code: 1 });
    await inState('a', 'backoff');
    await s.stop('a');
    await sleep(200);
    expect(s.get('a').state).toBe('stopped');
    expect(fake.processes('a')).toHaveLength(1);
  });

  it('failed → restart(): the budget back, the error cleared, restarts counted, ready again', async () => {
    const s = await supervisor({ restart: { maxRestarts: 0 } });
    s.add('a', SERVER);
    await inState('a', 'ready');
    fake.process('a').exit({ code: 2 });
    const failed = await inState('a', 'failed');
    expect(failed.error).toMatchObject({
      phase: 'runtime',
      code: 'PROCESS_EXITED',
      exitCode: 2,
      attempt: 1,
      maxAttempts: 1,
    });
    expect(failed.error?.nextRetryAt).toBeUndefined();
    await sleep(50);
    expect(fake.processes('a')).toHaveLength(1);

    await s.restart('a');
    const ready = await nth('a', 'ready', 2);
    expect(ready.error).toBeUndefined();
    expect(ready.restarts).toBe(1);
    // (restart() may pass through 'stopped' on its way.)
    expect(states('a').filter((st) => st !== 'stopped')).toEqual(['starting', 'ready', 'failed', 'starting', 'ready']);
    // A fresh budget: the next crash is attempt 1 again (and the last one with maxRestarts 0).
    fake.process('a').exit({ code: 2 });
    expect((await nth('a', 'failed', 2)).error).toMatchObject({ attempt: 1 });
  });

  it('restart() of a ready server replaces its process', async () => {
    const s = await supervisor();
    s.add('a', SERVER);
    await inState('a', 'ready');
    const before = fake.process('a');
    await s.restart('a');
    await nth('a', 'ready', 2);
    expect(before.ended).toMatchObject({ reason: 'stopped' });
    expect(fake.process('a')).not.toBe(before);
    expect(s.get('a').restarts).toBe(1);
  });
});

describe('restart policy', () => {
  it.each([
    { random: 0, delays: [10, 20, 40, 40] },
    { random: 0.999999, delays: [20, 40, 80, 80] },
  ])(
    'backoff doubles from backoffInitialMs to backoffMaxMs, jitter at its bounds (Math.random = $random)',
    async ({ random, delays }) => {
      // Before the server exists: its policy takes Math.random when it is made.
      vi.spyOn(Math, 'random').mockReturnValue(random);
      const s = await supervisor({ restart: { maxRestarts: 4 } });
      crashWhenReady('a', 5);
      s.add('a', SERVER);
      const failed = await inState('a', 'failed');
      expect(failed.error).toMatchObject({ attempt: 5, maxAttempts: 5 });
      const records = failures('a');
      expect(records.map((r) => r.attempt)).toEqual([1, 2, 3, 4, 5]);
      expect(records[4]?.nextRetryAt).toBeUndefined();
      expect(retryDelays('a')).toEqual(delays);
      assertPlanned(records.slice(0, 4), delays);
      assertWaitedOut('a');
    },
  );

  it('real jitter keeps every delay within [base/2, base] of the doubling schedule', async () => {
    const s = await supervisor({ restart: { maxRestarts: 5, backoffInitialMs: 16, backoffMaxMs: 64 } });
    crashWhenReady('a', 6);
    s.add('a', SERVER);
    await inState('a', 'failed');
    const records = failures('a').slice(0, 5);
    expect(records.map((r) => r.attempt)).toEqual([1, 2, 3, 4, 5]);
    const delays = retryDelays('a');
    expect(delays).toHaveLength(5);
    for (const [i, r] of records.entries()) {
      const base = Math.min(64, 16 * 2 ** (r.attempt - 1));
      expect(delays[i]).toBeGreaterThanOrEqual(base / 2);
      expect(delays[i]).toBeLessThanOrEqual(base);
    }
    assertPlanned(records, delays);
    assertWaitedOut('a');
  });

  it('maxRestarts failures within windowSec → failed; a failure after the window is attempt 1 again', async () => {
    const s = await supervisor({ restart: { maxRestarts: 1, windowSec: 0.5, healthyAfterSec: 3600 } });
    s.add('a', SERVER);
    await inState('a', 'ready');
    fake.process('a').exit({ code: 1 });
    expect((await nth('a', 'backoff', 1)).error).toMatchObject({ attempt: 1, maxAttempts: 2 });
    await nth('a', 'ready', 2);
    await sleep(550);
    fake.process('a').exit({ code: 1 });
    expect((await nth('a', 'backoff', 2)).error).toMatchObject({ attempt: 1 });
    await nth('a', 'ready', 3);
    fake.process('a').exit({ code: 1 });
    const failed = await inState('a', 'failed');
    expect(failed.error).toMatchObject({ attempt: 2, maxAttempts: 2, retryable: true });
    expect(failed.error?.nextRetryAt).toBeUndefined();
  });

  it('a server ready for healthyAfterSec gets its whole budget back', async () => {
    const s = await supervisor({ restart: { maxRestarts: 1, windowSec: 3600, healthyAfterSec: 0.2 } });
    s.add('a', SERVER);
    await inState('a', 'ready');
    fake.process('a').exit({ code: 1 });
    expect((await nth('a', 'backoff', 1)).error).toMatchObject({ attempt: 1 });
    await nth('a', 'ready', 2);
    await sleep(250);
    // Healthy long enough: this failure starts a new budget.
    fake.process('a').exit({ code: 1 });
    expect((await nth('a', 'backoff', 2)).error).toMatchObject({ attempt: 1 });
    await nth('a', 'ready', 3);
    // Not healthy long enough: the budget (one restart) is spent.
    fake.process('a').exit({ code: 1 });
    expect((await inState('a', 'failed')).error).toMatchObject({ attempt: 2 });
  });

  it.each<{ code: ErrorCode }>([
    { code: 'IMAGE_MISSING' },
    { code: 'HARDENING_CHECK_FAILED' },
    { code: 'INVALID_ARGUMENT' },
  ])('a non-retryable $code in session_create goes straight to failed', async ({ code }) => {
    const s = await supervisor();
    fake.failSessions(new BoxError(code, 'session_create', `fake ${code}`));
    s.add('a', SERVER);
    const failed = await inState('a', 'failed');
    expect(failed.error).toMatchObject({ phase: 'session_create', code, retryable: false, attempt: 1 });
    expect(failed.error?.nextRetryAt).toBeUndefined();
    expect(states('a')).toEqual(['starting', 'failed']);
  });

  it('a retryable session_create failure is retried', async () => {
    const s = await supervisor();
    fake.failSessions(new BoxError('SESSION_CREATE_FAILED', 'session_create', 'the engine refused the container'), 1);
    s.add('a', SERVER);
    await inState('a', 'ready');
    expect(failures('a')).toMatchObject([
      { phase: 'session_create', code: 'SESSION_CREATE_FAILED', retryable: true, attempt: 1 },
    ]);
  });

  it('a folder over its stageLimits: failed in workspace_stage with STAGE_LIMIT_EXCEEDED, not retried', async () => {
    const dir = folder({ 'server.js': '', 'a.txt': 'a', 'b.txt': 'b' });
    const s = await supervisor();
    s.add('a', { command: 'node', args: [join(dir, 'server.js')], box: { stageLimits: { maxFiles: 1 } } });
    const failed = await inState('a', 'failed');
    expect(failed.error).toMatchObject({
      phase: 'workspace_stage',
      code: 'STAGE_LIMIT_EXCEEDED',
      retryable: false,
      attempt: 1,
    });
    expect(states('a')).toEqual(['starting', 'failed']);
    expect(fake.processes('a')).toHaveLength(0);
  });
});

describe('the same start failure twice in a row', () => {
  it('a staging exec that fails the same way twice → failed, retryable false, sameFailureCount 2', async () => {
    const s = await supervisor();
    fake.failExec('stage', { exitCode: 2, stderr: 'tar: short read\n' });
    s.add('a', SERVER);
    const failed = await inState('a', 'failed');
    expect(failures('a').map((r) => [r.code, r.attempt, r.retryable])).toEqual([
      ['STAGE_FAILED', 1, true],
      ['STAGE_FAILED', 2, false],
    ]);
    expect(failed.error).toMatchObject({
      phase: 'workspace_stage',
      code: 'STAGE_FAILED',
      retryable: false,
      sameFailureCount: 2,
    });
    expect(failed.error?.message).toContain('the same failure 2 attempts in a row');
    expect(failed.error?.nextRetryAt).toBeUndefined();
  });

  it(
    'a process that exits at start with the same error ' + 'twice (a missing env var) → failed with its exit record',
    async () => {
      const s = await supervisor();
      fake.script('a', { initialize: { exit: { code: 1, stderr: 'Error: API_KEY is not set\n' } } });
      s.add('a', SERVER);
      const failed = await inState('a', 'failed');
      expect(failed.error).toMatchObject({
        phase: 'mcp_init',
        code: 'PROCESS_EXITED',
        exitCode: 1,
        retryable: false,
        sameFailureCount: 2,
        attempt: 2,
      });
      expect(failed.error?.stderrTail).toContain('API_KEY is not set');
      expect(fake.processes('a')).toHaveLength(2);
    },
  );

  // A regression test: before the Attempt refactor, the catch around the relay connect re-wrapped
  // the exit error of a process that had already ended as RELAY_CONNECT_FAILED (no exit code, and
  // never "the same failure", so the whole budget was spent).
  it(
    'a process that has already exited when the relay connects is recorded with its exit ' +
      '(PROCESS_EXITED, exit code), twice → failed',
    async () => {
      const s = await supervisor();
      fake.script('a', { exit: { afterMs: 0, code: 1, stderr: 'Error: API_KEY is not set\n' } });
      s.add('a', SERVER);
      const failed = await inState('a', 'failed');
      expect(failed.error).toMatchObject({ code: 'PROCESS_EXITED', exitCode: 1, sameFailureCount: 2, attempt: 2 });
    },
  );

  it('a command that is not there (exit 127) → process_start / PROCESS_START_FAILED, twice → failed', async () => {
    const s = await supervisor();
    fake.script('a', { exit: { afterMs: 0, code: 127, stderr: 'sh: exec: nosuch: not found\n' } });
    s.add('a', SERVER);
    const failed = await inState('a', 'failed');
    expect(failed.error).toMatchObject({
      phase: 'process_start',
      code: 'PROCESS_START_FAILED',
      exitCode: 127,
      sameFailureCount: 2,
    });
    expect(failed.error?.message).toContain('command not found');
  });

  it('an install that fails the same way twice → failed in dep_install', async () => {
    const dir = folder({ 'server.py': '', 'requirements.txt': 'nosuchpkg==1.0\n' });
    const s = await supervisor();
    fake.failExec('install', { exitCode: 1, stderr: 'ERROR: No matching distribution found for nosuchpkg==1.0\n' });
    s.add('a', { command: 'python3', args: [join(dir, 'server.py')] });
    const failed = await inState('a', 'failed');
    expect(failed.error).toMatchObject({ phase: 'dep_install', code: 'INSTALL_FAILED', sameFailureCount: 2 });
    expect(failed.error?.message).toContain('No matching distribution found for nosuchpkg');
    expect(failed.installTaskId).toBeDefined();
    expect(fake.execs.filter((e) => e.kind === 'install')).toHaveLength(2);
  });

  it('different failures in a row are retried until the server comes up', async () => {
    const s = await supervisor();
    fake.script('a', (attempt) =>
      attempt <= 2
        ? {
            initialize: {
              exit: {
                code: 1,
                stderr: attempt === 1 ? 'Error: cannot reach the database\n' : 'Error: config file is corrupt\n',
              },
            },
          }
        : {},
    );
    s.add('a', SERVER);
    await inState('a', 'ready');
    expect(failures('a').map((r) => [r.code, r.attempt, r.sameFailureCount])).toEqual([
      ['PROCESS_EXITED', 1, undefined],
      ['PROCESS_EXITED', 2, undefined],
    ]);
  });

  it('OOM kills never count toward it', async () => {
    const s = await supervisor();
    fake.script('a', (attempt) => (attempt <= 2 ? { initialize: { exit: { signal: 'SIGKILL', reason: 'oom' } } } : {}));
    s.add('a', SERVER);
    await inState('a', 'ready');
    expect(failures('a').map((r) => [r.code, r.attempt])).toEqual([
      ['OOM_KILLED', 1],
      ['OOM_KILLED', 2],
    ]);
  });
});

describe('faults at run time', () => {
  it('OOM: the call in flight fails with OOM_KILLED (137, SIGKILL, oomKilled) and the server restarts', async () => {
    const s = await supervisor();
    s.add('a', SERVER);
    await inState('a', 'ready');
    const err = await rejection(s.callTool('a', 'oom'));
    expect(err).toMatchObject({ code: 'OOM_KILLED', phase: 'runtime' });
    const backoff = await nth('a', 'backoff', 1);
    expect(backoff.error).toMatchObject({
      phase: 'runtime',
      code: 'OOM_KILLED',
      exitCode: 137,
      signal: 'SIGKILL',
      oomKilled: true,
      retryable: true,
    });
    expect(backoff.error?.message).toContain('OOM killer');
    expect(backoff.error?.stderrTail).toContain('allocating');
    await nth('a', 'ready', 2);
  });

  it(
    'a write past the file cap (SIGXFSZ): DISK_QUOTA_EXCEEDED, ' + 'and its folders are cleared before the next start',
    async () => {
      const s = await supervisor();
      s.add('a', SERVER);
      const ready = await inState('a', 'ready');
      const identity = fake.process('a').identity;
      fake.process('a').exit({ signal: 'SIGXFSZ' });
      const backoff = await nth('a', 'backoff', 1);
      expect(backoff.error).toMatchObject({
        phase: 'runtime',
        code: 'DISK_QUOTA_EXCEEDED',
        exitCode: 153,
        signal: 'SIGXFSZ',
      });
      expect(backoff.error?.message).toContain('SIGXFSZ');
      const again = await nth('a', 'ready', 2);
      expect(fake.released).toContainEqual(identity);
      expect(again.workspace).not.toBe(ready.workspace);
    },
  );

  it(
    'a tool call in flight when the process exits fails ' + 'at once with its exit record, not after its timeout',
    async () => {
      const s = await supervisor({ toolTimeoutSec: 30 });
      s.add('a', SERVER);
      await inState('a', 'ready');
      const started = Date.now();
      const err = await rejection(s.callTool('a', 'exit', { code: 3 }));
      expect(Date.now() - started).toBeLessThan(2000);
      expect(err).toMatchObject({ code: 'PROCESS_EXITED', phase: 'runtime' });
      expect((await nth('a', 'backoff', 1)).error).toMatchObject({
        code: 'PROCESS_EXITED',
        exitCode: 3,
        stderrTail: expect.stringContaining('exiting with code 3') as unknown,
      });
    },
  );

  it('a JSON-RPC error from a tool: TOOL_CALL_FAILED in tool_call, and the server stays ready', async () => {
    const s = await supervisor();
    s.add('a', SERVER);
    await inState('a', 'ready');
    const err = await rejection(s.callTool('a', 'fail', { message: 'no such city' }));
    expect(err).toMatchObject({ code: 'TOOL_CALL_FAILED', phase: 'tool_call' });
    expect(err.message).toContain('no such city');
    expect(s.get('a')).toMatchObject({ state: 'ready', error: { phase: 'tool_call', code: 'TOOL_CALL_FAILED' } });
    expect(await s.callTool('a', 'echo', { text: 'still here' })).toMatchObject({ content: [{ text: 'still here' }] });
    expect(states('a')).toEqual(['starting', 'ready']);
  });

  // Was a bug (guardCall): a tool's JSON-RPC error taken for a timeout when its
  // code is -32001, the code the SDK uses for its own RequestTimeout (a server may use any code in
  // -32000..-32099 for its errors). Such an answer becomes TOOL_TIMEOUT and counts toward
  // recycleAfterTimeouts: three of them in a row restart a healthy server.
  it('a tool answering a JSON-RPC error with code -32001 is TOOL_CALL_FAILED, not a timeout', async () => {
    const s = await supervisor();
    s.add('a', SERVER);
    await inState('a', 'ready');
    const err = await rejection(s.callTool('a', 'fail', { message: 'rate limited', code: -32001 }));
    expect(err).toMatchObject({ code: 'TOOL_CALL_FAILED', phase: 'tool_call' });
  });

  // Was a bug (guardCall): the same confusion with -32000, the SDK's ConnectionClosed
  // and the most common server error code: the supervisor takes the answer for a closed relay and
  // waits up to 5 s (EXIT_SETTLE_MS) for an exit record that never comes before it reports
  // TOOL_CALL_FAILED. Every such tool error reaches the caller 5 s late.
  it('a tool answering a JSON-RPC error with code -32000 fails at once', async () => {
    const s = await supervisor();
    s.add('a', SERVER);
    await inState('a', 'ready');
    const call = s.callTool('a', 'fail', { message: 'upstream API error', code: -32000 });
    const settled = await Promise.race([
      call.then(
        () => 'answered',
        () => 'failed',
      ),
      sleep(300).then(() => 'pending'),
    ]);
    expect(settled).toBe('failed');
  });

  it(
    'recycleAfterTimeouts consecutive tool-call timeouts ' + 'recycle the server; a call that answers resets the count',
    async () => {
      const s = await supervisor({ toolTimeoutSec: 0.1, recycleAfterTimeouts: 2 });
      s.add('a', SERVER);
      await inState('a', 'ready');
      const first = await rejection(s.callTool('a', 'hang'));
      expect(first).toMatchObject({ code: 'TOOL_TIMEOUT', phase: 'tool_call', details: { consecutiveTimeouts: 1 } });
      expect(s.get('a')).toMatchObject({ state: 'ready', error: { phase: 'tool_call', code: 'TOOL_TIMEOUT' } });
      await s.callTool('a', 'echo', { text: 'ok' });
      expect((await rejection(s.callTool('a', 'hang'))).details).toMatchObject({ consecutiveTimeouts: 1 });
      await sleep(30);
      expect(s.get('a').state).toBe('ready');
      expect(fake.processes('a')).toHaveLength(1);

      expect((await rejection(s.callTool('a', 'hang', {}, { timeoutMs: 50 }))).details).toMatchObject({
        consecutiveTimeouts: 2,
        timeoutMs: 50,
      });
      const backoff = await nth('a', 'backoff', 1);
      expect(backoff.error).toMatchObject({ phase: 'tool_call', code: 'TOOL_TIMEOUT', attempt: 1 });
      expect(backoff.error?.message).toContain('2 consecutive tool-call timeouts');
      await nth('a', 'ready', 2);
      expect(fake.processes('a')).toHaveLength(2);
      expect(fake.processes('a')[0]?.ended).toMatchObject({ reason: 'stopped' });
    },
  );

  it(
    'engine loss: box_unavailable / ENGINE_UNREACHABLE in ' + 'backoff, never failed, the restart budget not spent',
    async () => {
      const s = await supervisor({ restart: { maxRestarts: 1 } });
      s.add('a', SERVER);
      await inState('a', 'ready');
      fake.engineDown();
      expect(fake.process('a').ended).toMatchObject({ reason: 'engine_lost' });
      // More failed attempts than the budget allows, while the engine is away.
      await nth('a', 'backoff', 4);
      for (const r of failures('a'))
        expect(r).toMatchObject({ phase: 'box_unavailable', code: 'ENGINE_UNREACHABLE', attempt: 1, retryable: true });
      expect(s.get('a')).toMatchObject({ state: 'backoff', phase: 'box_unavailable' });
      fake.engineUp();
      await nth('a', 'ready', 2);
      expect(states('a')).not.toContain('failed');
      // The budget is whole: one crash is still retried.
      fake.process('a').exit({ code: 1 });
      const backoffs = s.history('a').filter((e) => e.state === 'backoff').length;
      expect((await nth('a', 'backoff', backoffs + 1)).error).toMatchObject({
        phase: 'runtime',
        code: 'PROCESS_EXITED',
        attempt: 1,
      });
      await nth('a', 'ready', 3);
    },
  );

  it(
    'a session death: runtime / CONTAINER_DIED once, ' + 'then ready in a replacement session with the same uid',
    async () => {
      const s = await supervisor();
      s.add('a', SERVER);
      const ready = await inState('a', 'ready');
      fake.killSession();
      const backoff = await nth('a', 'backoff', 1);
      expect(backoff.error).toMatchObject({ phase: 'runtime', code: 'CONTAINER_DIED', attempt: 1 });
      const again = await nth('a', 'ready', 2);
      expect(again.session).not.toBe(ready.session);
      expect(again.uid).toBe(ready.uid);
      expect(again.workspace).toBe(ready.workspace);
      expect(failures('a')).toHaveLength(1);
    },
  );

  it('one session death spends the budget of each of its servers once', async () => {
    const s = await supervisor();
    s.add('a', SERVER);
    s.add('b', SERVER);
    await Promise.all([inState('a', 'ready'), inState('b', 'ready')]);
    expect(s.get('a').session).toBe(s.get('b').session);
    fake.killSession();
    await Promise.all([nth('a', 'ready', 2), nth('b', 'ready', 2)]);
    for (const name of ['a', 'b'])
      expect(failures(name).map((r) => [r.phase, r.code, r.attempt])).toEqual([['runtime', 'CONTAINER_DIED', 1]]);
    expect(s.get('a').session).toBe(s.get('b').session);
  });

  it(
    'a staging cut short by the session dying under it: ' +
      'SESSION_DEAD in workspace_stage, then a replacement session',
    async () => {
      const s = await supervisor();
      let killed = false;
      fake.onExec((call) => {
        if (call.kind !== 'stage' || killed) return undefined;
        killed = true;
        fake.killSession(call.session);
        return { exitCode: 137, stderr: '' };
      });
      s.add('a', SERVER);
      await inState('a', 'ready');
      expect(failures('a')).toMatchObject([{ phase: 'workspace_stage', code: 'SESSION_DEAD', attempt: 1 }]);
      expect(fake.allSessions()).toHaveLength(2);
    },
  );

  it('a staging cut short by the engine going away: box_unavailable / ENGINE_UNREACHABLE, not charged', async () => {
    const s = await supervisor({ restart: { maxRestarts: 0 } });
    let left = 2;
    fake.onExec((call) => {
      if (call.kind !== 'stage' || left <= 0) return undefined;
      left--;
      fake.engineDown();
      setTimeout(() => fake.engineUp(), 30);
      return { exitCode: 1, stderr: 'tar: write error\n' };
    });
    s.add('a', SERVER);
    await inState('a', 'ready');
    // With maxRestarts 0, one charged failure would have been the end.
    for (const r of failures('a'))
      expect(r).toMatchObject({ phase: 'box_unavailable', code: 'ENGINE_UNREACHABLE', attempt: 1 });
    expect(failures('a').length).toBeGreaterThanOrEqual(2);
  });

  it('a session death followed by the engine going away (dockerd stopping) is refunded', async () => {
    const s = await supervisor({ restart: { maxRestarts: 1 } });
    s.add('a', SERVER);
    await inState('a', 'ready');
    fake.killSession();
    fake.engineDown();
    await nth('a', 'backoff', 3);
    expect(failures('a').map((r) => r.code)).toEqual(['CONTAINER_DIED', 'ENGINE_UNREACHABLE', 'ENGINE_UNREACHABLE']);
    fake.engineUp();
    await nth('a', 'ready', 2);
    fake.process('a').exit({ code: 1 });
    const backoffs = s.history('a').filter((e) => e.state === 'backoff').length;
    // Without the refund this would be attempt 2 of 2, and failed.
    expect((await nth('a', 'backoff', backoffs + 1)).error).toMatchObject({
      phase: 'runtime',
      code: 'PROCESS_EXITED',
      attempt: 1,
    });
    await nth('a', 'ready', 3);
  });
});

// The plain SERVER_UNRESPONSIVE case (and MCP_INIT_TIMEOUT / MCP_INIT_FAILED) is not here: after a
// missed ping (or a failed initialize) the supervisor waits 5 s for an exit record with delay() from
// node:timers/promises, which fake timers cannot advance. They stay in the Docker suite.
describe('health checks (fake timers: the ping and the stdout probe wait seconds)', () => {
  /** Fake timers and Date that also advance at real speed, so sockets and streams go on as usual. */
  function fakeClock(): void {
    vi.useFakeTimers({
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
      shouldAdvanceTime: true,
    });
  }

  it(
    'a missed ping while the process is being OOM-killed: the exit record wins ' +
      '(OOM_KILLED, not SERVER_UNRESPONSIVE)',
    async () => {
      fakeClock();
      const s = await supervisor({ pingIntervalSec: 1 });
      fake.script('a', (attempt) => (attempt === 1 ? { ping: 'ignore' } : {}));
      s.add('a', SERVER);
      await inState('a', 'ready');
      const proc = fake.process('a');
      await vi.advanceTimersByTimeAsync(1100);
      await proc.received('ping');
      // The ping times out: the SDK cancels it, and the supervisor waits a moment for an exit record.
      await vi.advanceTimersByTimeAsync(1100);
      await proc.received('notifications/cancelled');
      proc.exit({ signal: 'SIGKILL', reason: 'oom' });
      expect((await nth('a', 'backoff', 1)).error).toMatchObject({
        phase: 'runtime',
        code: 'OOM_KILLED',
        oomKilled: true,
      });
      await nth('a', 'ready', 2);
      expect(failures('a').map((r) => r.code)).toEqual(['OOM_KILLED']);
    },
  );

  it(
    'a server that closes its stdout and keeps running: the ' +
      'call in flight gets STDOUT_CLOSED, and it is restarted',
    async () => {
      fakeClock();
      const s = await supervisor();
      s.add('a', SERVER);
      await inState('a', 'ready');
      const call = rejection(s.callTool('a', 'close_stdout'));
      await fake.process('a').received('tools/call');
      // The relay asks whether stdout is still open once it has been quiet for 2 s with a request waiting.
      await vi.advanceTimersByTimeAsync(2500);
      expect(await call).toMatchObject({ code: 'STDOUT_CLOSED', phase: 'runtime' });
      expect((await nth('a', 'backoff', 1)).error).toMatchObject({ phase: 'runtime', code: 'STDOUT_CLOSED' });
      await nth('a', 'ready', 2);
    },
  );
});

/** The delays the server log announced ("…; retrying in N ms"), oldest first. */
function retryDelays(name: string): number[] {
  return current()
    .logs(name, 0, 2000)
    .lines.map((l) => /; retrying in (\d+) ms$/.exec(l.text)?.[1])
    .filter((d): d is string => d !== undefined)
    .map(Number);
}

/**
 * Each record's nextRetryAt is its delay after the failure. `at` and nextRetryAt are read from the
 * clock a moment apart (more under load), hence the slack.
 */
function assertPlanned(records: FailureRecord[], delays: number[]): void {
  for (const [i, r] of records.entries()) {
    const planned = Date.parse(r.nextRetryAt ?? '') - Date.parse(r.at);
    expect(Math.abs(planned - (delays[i] as number))).toBeLessThanOrEqual(25);
  }
}

/** Each retry started no earlier than the record's nextRetryAt said. */
function assertWaitedOut(name: string): void {
  const history = current().history(name);
  for (const [i, e] of history.entries()) {
    if (e.state !== 'backoff') continue;
    const next = history[i + 1];
    expect(next?.state).toBe('starting');
    expect(Date.parse(next?.at ?? '')).toBeGreaterThanOrEqual(Date.parse(e.error?.nextRetryAt ?? '') - 2);
  }
}
