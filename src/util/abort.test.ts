import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { BoxError } from '../errors/box-error.js';
import { abortError, deadlineSignal, delay, throwIfAborted, withAbort } from './abort.js';

const abortedWith = (reason?: unknown): AbortSignal => {
  const ac = new AbortController();
  ac.abort(reason);
  return ac.signal;
};

const timeoutReason = (): DOMException => new DOMException('The operation timed out.', 'TimeoutError');

/** Resolves when `signal` aborts, with the time it took. */
const abortedAfter = (signal: AbortSignal): Promise<number> => {
  const start = performance.now();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(performance.now() - start), { once: true }));
};

describe('abortError', () => {
  it.each([
    { name: 'a TimeoutError DOMException', reason: timeoutReason(), code: 'TIMEOUT', message: 'install timed out' },
    { name: 'an Error named TimeoutError', reason: Object.assign(new Error('t'), { name: 'TimeoutError' }), code: 'TIMEOUT', message: 'install timed out' },
    { name: 'an AbortError DOMException', reason: new DOMException('aborted', 'AbortError'), code: 'ABORTED', message: 'install was cancelled' },
    { name: 'a plain Error', reason: new Error('stop'), code: 'ABORTED', message: 'install was cancelled' },
    { name: 'a string', reason: 'user hit ctrl-c', code: 'ABORTED', message: 'install was cancelled' },
  ])('maps $name to $code', ({ reason, code, message }) => {
    const err = abortError(abortedWith(reason), 'dep_install', 'install');
    expect(err).toBeInstanceOf(BoxError);
    expect(err.code).toBe(code);
    expect(err.phase).toBe('dep_install');
    expect(err.message).toBe(message);
    expect(err.cause).toBe(reason);
  });

  it('maps a default abort() to ABORTED', () => {
    const signal = abortedWith();
    const err = abortError(signal, 'runtime', 'op');
    expect(err.code).toBe('ABORTED');
    expect(err.cause).toBe(signal.reason);
  });

  it('maps the reason of a real AbortSignal.timeout to TIMEOUT', async () => {
    const signal = AbortSignal.timeout(1);
    await abortedAfter(signal);
    expect(abortError(signal, 'tool_call', 'call').code).toBe('TIMEOUT');
  });

  it('returns a BoxError reason unchanged', () => {
    const reason = new BoxError('SESSION_DEAD', 'runtime', 'container died');
    expect(abortError(abortedWith(reason), 'tool_call', 'call')).toBe(reason);
  });
});

describe('throwIfAborted', () => {
  it('does nothing for a missing or live signal', () => {
    expect(() => throwIfAborted(undefined, 'runtime', 'op')).not.toThrow();
    expect(() => throwIfAborted(new AbortController().signal, 'runtime', 'op')).not.toThrow();
  });

  it('throws the mapped BoxError for an aborted signal', () => {
    expect(() => throwIfAborted(abortedWith(timeoutReason()), 'mcp_init', 'initialize')).toThrow(
      expect.objectContaining({ code: 'TIMEOUT', phase: 'mcp_init', message: 'initialize timed out' }),
    );
  });
});

describe('withAbort', () => {
  it.each([
    { name: 'without a signal', signal: (): AbortSignal | undefined => undefined },
    { name: 'with a signal that never aborts', signal: (): AbortSignal | undefined => new AbortController().signal },
  ])('resolves with the result $name', async ({ signal }) => {
    await expect(withAbort(signal(), 'runtime', 'op', async () => 'value')).resolves.toBe('value');
  });

  it('passes the function’s own rejection through', async () => {
    const own = new Error('own failure');
    await expect(
      withAbort(new AbortController().signal, 'runtime', 'op', async () => {
        throw own;
      }),
    ).rejects.toBe(own);
  });

  it('rejects with the BoxError when the signal aborts first, without waiting for fn', async () => {
    const ac = new AbortController();
    const never = new Promise<string>(() => undefined);
    const pending = withAbort(ac.signal, 'workspace_stage', 'staging', () => never);
    ac.abort(new Error('stop'));
    await expect(pending).rejects.toMatchObject({ name: 'BoxError', code: 'ABORTED', phase: 'workspace_stage', message: 'staging was cancelled' });
  });

  it('rejects with TIMEOUT when a deadline signal fires', async () => {
    const never = new Promise<string>(() => undefined);
    await expect(withAbort(deadlineSignal(10), 'process_start', 'start', () => never)).rejects.toMatchObject({ code: 'TIMEOUT', phase: 'process_start' });
  });

  it('does not call fn when the signal has already aborted', async () => {
    let called = false;
    const run = (): Promise<number> =>
      withAbort(abortedWith('early'), 'runtime', 'op', async () => {
        called = true;
        return 1;
      });
    await expect(run()).rejects.toBeInstanceOf(BoxError);
    expect(called).toBe(false);
  });

  it('adds an abort listener while pending and removes it once settled', async () => {
    const ac = new AbortController();
    let finish: (v: number) => void = () => undefined;
    const pending = withAbort(ac.signal, 'runtime', 'op', () => new Promise<number>((resolve) => (finish = resolve)));
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(1);
    finish(1);
    await expect(pending).resolves.toBe(1);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });
});

describe('deadlineSignal', () => {
  it('aborts with a TimeoutError after about ms', async () => {
    const signal = deadlineSignal(30);
    expect(signal.aborted).toBe(false);
    const elapsed = await abortedAfter(signal);
    expect(elapsed).toBeGreaterThanOrEqual(25);
    expect(signal.aborted).toBe(true);
    expect((signal.reason as Error).name).toBe('TimeoutError');
  });

  it.each([0, -5])('aborts promptly for ms = %i', async (ms) => {
    const signal = deadlineSignal(ms);
    await abortedAfter(signal);
    expect(signal.aborted).toBe(true);
  });

  it.each([undefined, Number.POSITIVE_INFINITY, Number.NaN])('never aborts on its own for ms = %s', async (ms) => {
    const signal = deadlineSignal(ms);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(signal.aborted).toBe(false);
  });

  it('returns the parent itself when there is no deadline', () => {
    const parent = new AbortController().signal;
    expect(deadlineSignal(undefined, parent)).toBe(parent);
  });

  it('aborts with the parent’s reason when the parent aborts first', async () => {
    const parent = new AbortController();
    const signal = deadlineSignal(10_000, parent.signal);
    const reason = new Error('parent stop');
    parent.abort(reason);
    await Promise.resolve();
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(reason);
  });
});

describe('delay', () => {
  it('resolves after ms', async () => {
    const start = performance.now();
    await delay(20);
    expect(performance.now() - start).toBeGreaterThanOrEqual(15);
  });

  it('rejects when the signal aborts', async () => {
    const ac = new AbortController();
    const pending = delay(10_000, ac.signal);
    ac.abort(new Error('cancel'));
    await expect(pending).rejects.toThrow();
  });
});
