import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BoxError } from '../errors/box-error.js';
import {
  TaskRegistry,
  type TaskContext,
  type TaskErrorSpec,
  type TaskRecord,
  type TaskRegistryOptions,
} from './task-registry.js';

/** The error spec of an install task (what src/install gives the registry). */
const INSTALL: TaskErrorSpec = {
  phase: 'dep_install',
  codes: { failed: 'INSTALL_FAILED', cancelled: 'INSTALL_CANCELLED' },
};
/** Another kind of task, with codes of its own. */
const IMAGE: TaskErrorSpec = { phase: 'image', codes: { failed: 'IMAGE_BUILD_FAILED', cancelled: 'ABORTED' } };
import { thrown } from '../../test/helpers/thrown.js';

const registries: TaskRegistry[] = [];

afterEach(() => {
  for (const r of registries.splice(0)) r.close();
});

function registry(opts: TaskRegistryOptions = {}): TaskRegistry {
  const r = new TaskRegistry(opts);
  registries.push(r);
  return r;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (err: unknown) => void;
}

function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Starts a task whose body waits for `gate`, exposing its context. */
function startGated<T>(
  r: TaskRegistry,
  gate: Deferred<T>,
  kind = 'install',
  subject = 'srv',
  errors: TaskErrorSpec = INSTALL,
) {
  let ctx!: TaskContext;
  const task = r.start(
    kind,
    subject,
    (c) => {
      ctx = c;
      return gate.promise;
    },
    errors,
  );
  return { task, ctx };
}

/** A body that finishes only when its signal aborts, rejecting with the abort reason. */
const untilAborted = (ctx: TaskContext): Promise<never> =>
  new Promise((_, reject) => {
    ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
  });

describe('TaskRegistry: lifecycle', () => {
  it('working → completed with its result', async () => {
    const r = registry();
    const gate = deferred<{ ok: number }>();
    const { task } = startGated(r, gate, 'install', 'github');
    const working = task.record();
    expect(task.id).toMatch(/^task_[0-9a-f]{16}$/);
    expect(working).toMatchObject({
      id: task.id,
      kind: 'install',
      subject: 'github',
      state: 'working',
      progress: 'starting',
      endedAt: null,
      outputLines: 0,
      error: null,
    });
    expect(Date.parse(working.startedAt)).not.toBeNaN();
    await sleep(20);
    expect(r.get(task.id).elapsedMs).toBeGreaterThanOrEqual(15);

    const result = { ok: 1 };
    gate.resolve(result);
    await expect(task.done).resolves.toBe(result);
    const done = r.get(task.id);
    expect(done).toMatchObject({ state: 'completed', progress: 'completed', error: null });
    expect(done.endedAt).not.toBeNull();
    expect(Date.parse(done.endedAt as string)).toBeGreaterThanOrEqual(Date.parse(done.startedAt));
    await sleep(20);
    expect(r.get(task.id).elapsedMs).toBe(done.elapsedMs); // frozen once finished
  });

  it('ids are unique', () => {
    const r = registry();
    const ids = new Set(Array.from({ length: 20 }, () => r.start('k', 's', () => Promise.resolve(), INSTALL).id));
    expect(ids.size).toBe(20);
  });

  it('failing with a BoxError → failed, with its fields in record.error', async () => {
    const r = registry();
    const err = new BoxError('INSTALL_FAILED', 'dep_install', 'pip exited 1', { details: { exitCode: 1, tail: 'x' } });
    const task = r.start('install', 'srv', () => Promise.reject(err), INSTALL);
    await expect(task.done).rejects.toBe(err);
    const rec = r.get(task.id);
    expect(rec.state).toBe('failed');
    expect(rec.progress).toBe('failed: pip exited 1');
    expect(rec.error).toEqual({
      code: 'INSTALL_FAILED',
      phase: 'dep_install',
      message: 'pip exited 1',
      details: { exitCode: 1, tail: 'x' },
    });
    expect(rec.endedAt).not.toBeNull();
  });

  it('a non-BoxError failure is wrapped as INSTALL_FAILED keeping the cause', async () => {
    const r = registry();
    const cause = new Error('boom');
    const task = r.start('install', 'srv', () => Promise.reject(cause), INSTALL);
    const err = await task.done.then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BoxError);
    expect(err).toMatchObject({ code: 'INSTALL_FAILED', phase: 'dep_install', message: 'Error: boom', cause });
    expect(r.get(task.id).error).toMatchObject({ code: 'INSTALL_FAILED', message: 'Error: boom' });
  });

  it('a synchronous throw in the body fails the task', async () => {
    const r = registry();
    const task = r.start(
      'install',
      'srv',
      () => {
        throw new BoxError('EXEC_FAILED', 'dep_install', 'no exec');
      },
      INSTALL,
    );
    await expect(task.done).rejects.toMatchObject({ code: 'EXEC_FAILED' });
    expect(r.get(task.id).state).toBe('failed');
  });

  it('list() returns every known task', async () => {
    const r = registry();
    const a = r.start('install', 'a', () => Promise.resolve(1), INSTALL);
    const gate = deferred();
    const { task: b } = startGated(r, gate, 'build', 'b');
    await a.done;
    const list = r.list();
    expect(list.map((t) => [t.id, t.kind, t.subject, t.state]).sort()).toEqual(
      [
        [a.id, 'install', 'a', 'completed'],
        [b.id, 'build', 'b', 'working'],
      ].sort(),
    );
    gate.resolve();
  });
});

describe('TaskRegistry: output and progress', () => {
  it.each([
    { name: 'lines split across chunk boundaries', chunks: ['hel', 'lo\nwor', 'ld\n'], lines: ['hello', 'world'] },
    { name: 'CRLF in one chunk', chunks: ['one\r\ntwo\r\n'], lines: ['one', 'two'] },
    { name: 'CR (progress-bar style rewrites)', chunks: ['10%\r50%\r100%\n'], lines: ['10%', '50%', '100%'] },
    { name: 'a chunk per character', chunks: [...'ab\ncd\n'], lines: ['ab', 'cd'] },
    { name: 'blank lines are kept in the ring', chunks: ['a\n\n\nb\n'], lines: ['a', '', '', 'b'] },
    { name: 'an unterminated last line is shown by tail', chunks: ['done\npart', 'ial'], lines: ['done', 'partial'] },
  ])('$name', ({ chunks, lines }) => {
    const r = registry();
    const gate = deferred();
    const { task, ctx } = startGated(r, gate);
    for (const c of chunks) ctx.output(c);
    expect(r.tail(task.id, 100)).toEqual(lines);
    gate.resolve();
  });

  it('counts whole lines only, and keeps the unterminated line when the task finishes', async () => {
    const r = registry();
    const gate = deferred();
    const { task, ctx } = startGated(r, gate);
    ctx.output('a\nb\nunterminated');
    expect(r.get(task.id).outputLines).toBe(2);
    gate.resolve();
    await task.done;
    expect(r.get(task.id).outputLines).toBe(3);
    expect(r.tail(task.id)).toEqual(['a', 'b', 'unterminated']);
  });

  it.each([
    { name: 'the last non-blank line, trimmed', chunks: ['step 1\n', '   step 2   \n', '\n   \n'], progress: 'step 2' },
    { name: 'an unterminated line does not count yet', chunks: ['step 1\nstep 2'], progress: 'step 1' },
    { name: 'after CR rewrites', chunks: ['10%\r55%\r'], progress: '55%' },
    { name: 'only blank output keeps "starting"', chunks: ['\n\n  \n'], progress: 'starting' },
    {
      name: 'long lines are clipped to 200 characters',
      chunks: [`${'x'.repeat(300)}\n`],
      progress: `${'x'.repeat(199)}…`,
    },
  ])('progress: $name', ({ chunks, progress }) => {
    const r = registry();
    const gate = deferred();
    const { task, ctx } = startGated(r, gate);
    for (const c of chunks) ctx.output(c);
    expect(r.get(task.id).progress).toBe(progress);
    gate.resolve();
  });

  it('an explicit progress message replaces the one from output, and output replaces it again', () => {
    const r = registry();
    const gate = deferred();
    const { task, ctx } = startGated(r, gate);
    ctx.output('from output\n');
    ctx.progress('resolving dependencies');
    expect(r.get(task.id).progress).toBe('resolving dependencies');
    ctx.output('Collecting requests\n');
    expect(r.get(task.id).progress).toBe('Collecting requests');
    gate.resolve();
  });

  it('progress and output after the task finished change nothing', async () => {
    const r = registry();
    const gate = deferred();
    const { task, ctx } = startGated(r, gate);
    gate.resolve();
    await task.done;
    ctx.progress('late');
    ctx.output('late line\n');
    expect(r.get(task.id).progress).toBe('completed');
  });

  it('redacts output lines, progress messages and the error message', async () => {
    const r = registry({ redact: (t) => t.replaceAll('hunter2', '[redacted]') });
    const gate = deferred();
    const { task, ctx } = startGated(r, gate);
    ctx.output('pip install --password hunter2\n');
    expect(r.tail(task.id)).toEqual(['pip install --password [redacted]']);
    expect(r.get(task.id).progress).toBe('pip install --password [redacted]');
    ctx.output('token=hun');
    ctx.output('ter2 end\n'); // a secret split across chunks
    expect(r.tail(task.id)).toEqual(['pip install --password [redacted]', 'token=[redacted] end']);
    ctx.progress('using hunter2');
    expect(r.get(task.id).progress).toBe('using [redacted]');
    gate.reject(new BoxError('INSTALL_FAILED', 'dep_install', 'auth failed for hunter2'));
    await expect(task.done).rejects.toMatchObject({ code: 'INSTALL_FAILED' });
    const rec = r.get(task.id);
    expect(rec.error?.message).toBe('auth failed for [redacted]');
    expect(rec.progress).toBe('failed: auth failed for [redacted]');
    expect(JSON.stringify(rec)).not.toContain('hunter2');
    expect(r.tail(task.id).join('\n')).not.toContain('hunter2');
  });

  it('flushes a redacted unterminated line when the task finishes', async () => {
    const r = registry({ redact: (t) => t.replaceAll('hunter2', '***') });
    const gate = deferred();
    const { task, ctx } = startGated(r, gate);
    ctx.output('last hunter2');
    gate.resolve();
    await task.done;
    expect(r.tail(task.id)).toEqual(['last ***']);
  });

  it('tail(n) returns the last n lines; 0 or less → []', () => {
    const r = registry();
    const gate = deferred();
    const { task, ctx } = startGated(r, gate);
    ctx.output(Array.from({ length: 60 }, (_, i) => `line ${i + 1}\n`).join(''));
    expect(r.tail(task.id, 3)).toEqual(['line 58', 'line 59', 'line 60']);
    expect(r.tail(task.id, 1)).toEqual(['line 60']);
    expect(r.tail(task.id, 0)).toEqual([]);
    expect(r.tail(task.id, -5)).toEqual([]);
    expect(r.tail(task.id)).toHaveLength(50);
    expect(r.tail(task.id)[0]).toBe('line 11');
    expect(r.tail(task.id, 1000)).toHaveLength(60);
    gate.resolve();
  });

  it('maxOutputLines bounds the ring', () => {
    const r = registry({ maxOutputLines: 5 });
    const gate = deferred();
    const { task, ctx } = startGated(r, gate);
    for (let i = 1; i <= 12; i++) ctx.output(`l${i}\n`);
    expect(r.tail(task.id, 100)).toEqual(['l8', 'l9', 'l10', 'l11', 'l12']);
    expect(r.get(task.id).outputLines).toBe(5);
    ctx.output('a\nb\nc\nd\ne\nf\ng\n'); // one chunk larger than the ring
    expect(r.tail(task.id, 100)).toEqual(['c', 'd', 'e', 'f', 'g']);
    gate.resolve();
  });
});

describe('TaskRegistry: heartbeat', () => {
  it('reports "still working after" when the task is quiet', async () => {
    const r = registry({ heartbeatMs: 50 });
    const gate = deferred();
    const updates: TaskRecord[] = [];
    r.on('update', (rec) => updates.push(rec));
    const { task, ctx } = startGated(r, gate);
    ctx.output('Collecting big-package\n');
    await sleep(200);
    expect(r.get(task.id).progress).toMatch(/^still working after \d+ s \(no output for \d+ s\)$/);
    expect(updates.some((u) => u.progress.startsWith('still working after'))).toBe(true);
    ctx.output('Installing\n');
    expect(r.get(task.id).progress).toBe('Installing');
    gate.resolve();
    await task.done;
    expect(r.get(task.id).progress).toBe('completed');
  });

  it('stays quiet while output keeps coming', async () => {
    const r = registry({ heartbeatMs: 150 });
    const gate = deferred();
    const { task, ctx } = startGated(r, gate);
    for (let i = 0; i < 20; i++) {
      ctx.output(`tick ${i}\n`);
      await sleep(10);
    }
    expect(r.get(task.id).progress).toBe('tick 19');
    gate.resolve();
  });

  it('stops once the task finished', async () => {
    const r = registry({ heartbeatMs: 30 });
    const task = r.start('install', 'srv', () => Promise.resolve(), INSTALL);
    await task.done;
    await sleep(120);
    expect(r.get(task.id).progress).toBe('completed');
  });
});

describe('TaskRegistry: cancel', () => {
  it('aborts the signal; the task ends cancelled; cancelling again is a CONFLICT', async () => {
    const r = registry();
    let ctx!: TaskContext;
    const task = r.start(
      'install',
      'srv',
      (c) => {
        ctx = c;
        return untilAborted(c);
      },
      INSTALL,
    );
    expect(ctx.signal.aborted).toBe(false);
    const snapshot = r.cancel(task.id);
    expect(snapshot).toMatchObject({ state: 'working', progress: 'cancelling' });
    expect(ctx.signal.aborted).toBe(true);
    expect(ctx.signal.reason).toBeInstanceOf(BoxError);
    expect(ctx.signal.reason).toMatchObject({ code: 'INSTALL_CANCELLED', phase: 'dep_install' });
    await expect(task.done).rejects.toMatchObject({ code: 'INSTALL_CANCELLED' });
    const rec = r.get(task.id);
    expect(rec.state).toBe('cancelled');
    expect(rec.progress).toBe('cancelled');
    expect(rec.error?.code).toBe('INSTALL_CANCELLED');

    const again = thrown(() => r.cancel(task.id));
    expect(again.code).toBe('CONFLICT');
    expect(again.details).toEqual({ state: 'cancelled' });
    expect(again.message).toContain(task.id);
  });

  it('a body that finishes normally after a cancel is still recorded as cancelled', async () => {
    const r = registry();
    const gate = deferred<string>();
    const { task } = startGated(r, gate);
    r.cancel(task.id);
    gate.resolve('value');
    await expect(task.done).resolves.toBe('value');
    expect(r.get(task.id)).toMatchObject({ state: 'cancelled', error: null });
  });

  it.each([
    { name: 'completed', settle: (d: Deferred<void>) => d.resolve() },
    { name: 'failed', settle: (d: Deferred<void>) => d.reject(new BoxError('INSTALL_FAILED', 'dep_install', 'x')) },
  ])('cancelling a $name task is a CONFLICT', async ({ name, settle }) => {
    const r = registry();
    const gate = deferred();
    const { task } = startGated(r, gate);
    settle(gate);
    await task.done.catch(() => undefined);
    const err = thrown(() => r.cancel(task.id));
    expect(err.code).toBe('CONFLICT');
    expect(err.details).toEqual({ state: name });
    expect(r.get(task.id).state).toBe(name);
  });
});

describe("TaskRegistry: the caller's error codes", () => {
  it('a failure, a cancel and a conflict use the phase and codes the caller gave, never install ones', async () => {
    const r = registry();
    const crashed = r.start('image-build', 'img', () => Promise.reject(new Error('boom')), IMAGE);
    await expect(crashed.done).rejects.toMatchObject({
      code: 'IMAGE_BUILD_FAILED',
      phase: 'image',
      message: 'Error: boom',
    });
    expect(r.get(crashed.id)).toMatchObject({
      kind: 'image-build',
      phase: 'image',
      state: 'failed',
      error: { code: 'IMAGE_BUILD_FAILED', phase: 'image' },
    });
    const gate = deferred();
    const { task, ctx } = startGated(r, gate, 'image-build', 'img', IMAGE);
    const body = untilAborted(ctx).catch((err: unknown) => gate.reject(err));
    r.cancel(task.id);
    await body;
    expect(ctx.signal.reason).toMatchObject({
      code: 'ABORTED',
      phase: 'image',
      message: `Task ${task.id} was cancelled`,
    });
    await expect(task.done).rejects.toMatchObject({ code: 'ABORTED', phase: 'image' });
    expect(r.get(task.id)).toMatchObject({ state: 'cancelled', error: { code: 'ABORTED', phase: 'image' } });
    expect(thrown(() => r.cancel(task.id))).toMatchObject({ code: 'CONFLICT', phase: 'image' });
  });

  it("an unknown id is the asker's mistake: NOT_FOUND in phase request", () => {
    expect(thrown(() => registry().get('task_nope'))).toMatchObject({ code: 'NOT_FOUND', phase: 'request' });
  });
});

describe('TaskRegistry: unknown ids and TTL', () => {
  it.each([
    { name: 'get', call: (r: TaskRegistry) => r.get('task_nope') },
    { name: 'tail', call: (r: TaskRegistry) => r.tail('task_nope') },
    { name: 'cancel', call: (r: TaskRegistry) => r.cancel('task_nope') },
  ])('$name of an unknown id → NOT_FOUND', ({ call }) => {
    const err = thrown(() => call(registry()));
    expect(err.code).toBe('NOT_FOUND');
    expect(err.message).toContain('"task_nope"');
  });

  it('finished tasks disappear after the TTL; working ones stay', async () => {
    const r = registry({ ttlMs: 100 });
    const finished = r.start('install', 'a', () => Promise.resolve(), INSTALL);
    const gate = deferred();
    const { task: working } = startGated(r, gate);
    await finished.done;
    expect(r.get(finished.id).state).toBe('completed');
    await sleep(300);
    expect(thrown(() => r.get(finished.id)).code).toBe('NOT_FOUND');
    expect(r.list().map((t) => t.id)).toEqual([working.id]);
    expect(r.get(working.id).state).toBe('working');
    gate.resolve();
    await working.done;
    expect(r.get(working.id).state).toBe('completed');
  });
});

describe('TaskRegistry: events and close', () => {
  it('emits update snapshots for start, output, progress and the end', async () => {
    const r = registry();
    const updates: TaskRecord[] = [];
    r.on('update', (rec) => updates.push(rec));
    const gate = deferred();
    const { task, ctx } = startGated(r, gate);
    ctx.output('line one\n');
    ctx.progress('half way');
    gate.resolve();
    await task.done;
    expect(updates.every((u) => u.id === task.id)).toBe(true);
    expect(updates.map((u) => [u.state, u.progress])).toEqual([
      ['working', 'starting'],
      ['working', 'line one'],
      ['working', 'half way'],
      ['completed', 'completed'],
    ]);
    // Snapshots are copies: changing one does not change the registry.
    (updates[0] as TaskRecord).state = 'failed';
    expect(r.get(task.id).state).toBe('completed');
  });

  it('close() aborts working tasks with a shutdown ABORTED and leaves finished ones alone', async () => {
    const r = registry();
    let ctx!: TaskContext;
    const working = r.start(
      'install',
      'a',
      (c) => {
        ctx = c;
        return untilAborted(c);
      },
      INSTALL,
    );
    const finished = r.start('install', 'b', () => Promise.resolve('ok'), INSTALL);
    await finished.done;
    r.close();
    expect(ctx.signal.aborted).toBe(true);
    expect(ctx.signal.reason).toMatchObject({ code: 'ABORTED', phase: 'shutdown' });
    await expect(working.done).rejects.toMatchObject({ code: 'ABORTED', phase: 'shutdown' });
    expect(r.get(working.id)).toMatchObject({ state: 'failed', error: { code: 'ABORTED', phase: 'shutdown' } });
    expect(r.get(finished.id).state).toBe('completed');
  });
});

describe('TaskRegistry: output updates are throttled', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** Fake clock; every 'update' with the fake time it went out at. */
  function throttled(updateIntervalMs = 250): { r: TaskRegistry; updates: { at: number; rec: TaskRecord }[] } {
    vi.useFakeTimers({ now: 1_000_000 });
    const r = registry({ updateIntervalMs, heartbeatMs: 60_000 });
    const updates: { at: number; rec: TaskRecord }[] = [];
    r.on('update', (rec) => updates.push({ at: Date.now(), rec }));
    return { r, updates };
  }

  it(
    '10,000 output chunks in 1 s are a handful of updates, at most one per interval, ' +
      'and the latest state goes out on the trailing edge',
    async () => {
      const { r, updates } = throttled(250);
      const gate = deferred();
      const { task, ctx } = startGated(r, gate);
      for (let i = 0; i < 10_000; i++) {
        ctx.output(`line ${i}\n`);
        if (i % 10 === 9) vi.advanceTimersByTime(1);
      }
      vi.advanceTimersByTime(300);
      const working = updates.filter((u) => u.rec.state === 'working');
      expect(working.length).toBeLessThanOrEqual(1 + Math.ceil(1300 / 250) + 1);
      const outputDriven = working.slice(1).map((u) => u.at);
      for (let i = 1; i < outputDriven.length; i++)
        expect((outputDriven[i] as number) - (outputDriven[i - 1] as number)).toBeGreaterThanOrEqual(250);
      expect(updates.at(-1)?.rec).toMatchObject({ state: 'working', progress: 'line 9999', outputLines: 2000 });
      expect(r.get(task.id).progress).toBe('line 9999'); // reads are never throttled
      gate.resolve();
      await task.done;
      expect(updates.at(-1)?.rec.state).toBe('completed');
    },
  );

  it(
    'the end goes out at once and is the last update: a ' + 'pending throttled one is dropped, its timer cleared',
    async () => {
      const { r, updates } = throttled(250);
      const gate = deferred();
      const { task, ctx } = startGated(r, gate);
      ctx.output('first\n'); // at once
      ctx.output('second\n'); // pending
      const timersWithPending = vi.getTimerCount();
      gate.resolve();
      await task.done;
      expect(vi.getTimerCount()).toBe(timersWithPending - 2); // the pending update and the heartbeat
      vi.advanceTimersByTime(1000);
      expect(updates.map((u) => [u.rec.state, u.rec.progress])).toEqual([
        ['working', 'starting'],
        ['working', 'first'],
        ['completed', 'completed'],
      ]);
      expect(updates.at(-1)?.rec.outputLines).toBe(2);
    },
  );

  it.each([
    {
      name: 'fails',
      settle: (d: Deferred<void>) => d.reject(new BoxError('INSTALL_FAILED', 'dep_install', 'pip exited 1')),
      state: 'failed',
    },
    { name: 'is cancelled', settle: (d: Deferred<void>) => d.resolve(), state: 'cancelled', cancel: true },
  ])(
    'a task that $name with an update pending ends with its final record, and nothing after it',
    async ({ settle, state, cancel }) => {
      const { r, updates } = throttled(250);
      const gate = deferred();
      const { task, ctx } = startGated(r, gate);
      ctx.output('a\n');
      ctx.output('b\n');
      if (cancel === true) r.cancel(task.id);
      settle(gate);
      await task.done.catch(() => undefined);
      vi.advanceTimersByTime(1000);
      expect(updates.at(-1)?.rec.state).toBe(state);
      expect(updates.filter((u) => u.rec.state !== 'working')).toHaveLength(1);
    },
  );

  it(
    'an explicit progress message goes out at once, carrying ' + 'the pending output update, which is not sent again',
    () => {
      const { r, updates } = throttled(250);
      const gate = deferred();
      const { ctx } = startGated(r, gate);
      ctx.output('first\n');
      ctx.output('second\n'); // pending
      ctx.progress('resolving');
      expect(updates.at(-1)?.rec).toMatchObject({ progress: 'resolving', outputLines: 2 });
      vi.advanceTimersByTime(1000);
      expect(updates.map((u) => u.rec.progress)).toEqual(['starting', 'first', 'resolving']);
      ctx.output('third\n'); // an interval after the last one: at once again
      expect(updates.at(-1)?.rec.progress).toBe('third');
      gate.resolve();
    },
  );

  it('updateIntervalMs: 0 emits an update for every chunk', () => {
    const { r, updates } = throttled(0);
    const gate = deferred();
    const { ctx } = startGated(r, gate);
    for (let i = 0; i < 5; i++) ctx.output(`l${i}\n`);
    expect(updates.map((u) => u.rec.progress)).toEqual(['starting', 'l0', 'l1', 'l2', 'l3', 'l4']);
    gate.resolve();
  });
});

describe('TaskRegistry: restore after a restart', () => {
  const working = (id: string, startedAt = new Date(Date.now() - 5000).toISOString()): TaskRecord => ({
    id,
    kind: 'install',
    subject: 'slow',
    state: 'working',
    phase: 'dep_install',
    progress: 'starting',
    startedAt,
    endedAt: null,
    elapsedMs: 0,
    outputLines: 0,
    error: null,
  });

  it('emits started once, with the working record, before any other update', async () => {
    const r = registry();
    const seen: string[] = [];
    r.on('started', (t) => seen.push(`started ${t.state}`));
    r.on('update', (t) => seen.push(`update ${t.state}`));
    const gate = deferred();
    const { task, ctx } = startGated(r, gate);
    ctx.output('a line\n');
    gate.resolve();
    await task.done;
    expect(seen).toEqual(['started working', 'update working', 'update working', 'update completed']);
  });

  it('turns a task that was still working when the last run ended into failed / INTERRUPTED, and returns it', () => {
    const r = registry();
    const before = Date.now();
    const interrupted = r.restore([working('task_a')]);
    expect(interrupted).toHaveLength(1);
    const record = r.get('task_a');
    expect(interrupted[0]).toEqual(record);
    expect(record).toMatchObject({
      id: 'task_a',
      kind: 'install',
      subject: 'slow',
      state: 'failed',
      error: { code: 'INTERRUPTED', phase: 'dep_install' },
    });
    expect(record.error?.message).toMatch(/^serve stopped while this task was working/);
    expect(record.progress).toMatch(/^failed: serve stopped while this task was working/);
    expect(Date.parse(record.endedAt ?? '')).toBeGreaterThanOrEqual(before);
    expect(record.elapsedMs).toBeGreaterThanOrEqual(5000);
    // It is finished now: cancelling it is a conflict, like any finished task.
    expect(thrown(() => r.cancel('task_a'))).toMatchObject({ code: 'CONFLICT' });
  });

  it('the last record of an id wins: a task that started and then finished is not interrupted', () => {
    const r = registry();
    const done: TaskRecord = {
      ...working('task_b'),
      state: 'completed',
      progress: 'completed',
      endedAt: new Date().toISOString(),
      elapsedMs: 1200,
    };
    expect(r.restore([working('task_b'), done])).toEqual([]);
    expect(r.get('task_b')).toMatchObject({ state: 'completed', elapsedMs: 1200, error: null });
  });

  it('an interrupted task restored again (a third run) stays what the second run made it', () => {
    const first = registry();
    const [failed] = first.restore([working('task_c')]);
    const second = registry();
    expect(second.restore([working('task_c'), failed as TaskRecord])).toEqual([]);
    expect(second.get('task_c')).toEqual(failed);
  });

  it(
    "INTERRUPTED carries the task's own phase (shutdown for a record of an older version, without one), and a task " +
      'already known is left alone',
    async () => {
      const r = registry();
      const gate = deferred();
      const { task } = startGated(r, gate, 'image-build', 'x', IMAGE);
      const { phase: _phase, ...legacy } = { ...working('task_e'), kind: 'image-build' };
      expect(
        r
          .restore([
            { ...working(task.id), kind: 'image-build', phase: 'image' },
            { ...working('task_d'), kind: 'image-build', phase: 'image' },
            legacy,
          ])
          .map((t) => t.id),
      ).toEqual(['task_d', 'task_e']);
      expect(r.get('task_d')).toMatchObject({ phase: 'image', error: { code: 'INTERRUPTED', phase: 'image' } });
      expect(r.get('task_e')).toMatchObject({ phase: 'shutdown', error: { code: 'INTERRUPTED', phase: 'shutdown' } });
      expect(r.get(task.id).state).toBe('working');
      gate.resolve();
      await task.done;
    },
  );
});
