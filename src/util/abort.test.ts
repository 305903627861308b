import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { BoxError } from '../errors/box-error.js';
import { abortError, delay, linkedSignal, throwIfAborted } from './abort.js';

const abortedWith = (reason?: unknown): AbortSignal => {
  const ac = new AbortController();
  ac.abort(reason);
  return ac.signal;
};

const timeoutReason = (): DOMException => new DOMException('The operation timed out.', 'TimeoutError');

/** Resolves when `signal` aborts, with the time it took. */
const abortedAfter = (signal: AbortSignal): Promise<number> => {
  const start = performance.now();
  return new Promise((resolve) =>
    signal.addEventListener('abort', () => resolve(performance.now() - start), { once: true }),
  );
};

describe('abortError', () => {
  it.each([
    { name: 'a TimeoutError DOMException', reason: timeoutReason(), code: 'TIMEOUT', message: 'install timed out' },
    {
      name: 'an Error named TimeoutError',
      reason: Object.assign(new Error('t'), { name: 'TimeoutError' }),
      code: 'TIMEOUT',
      message: 'install timed out',
    },
    {
      name: 'an AbortError DOMException',
      reason: new DOMException('aborted', 'AbortError'),
      code: 'ABORTED',
      message: 'install was cancelled',
    },
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

describe('linkedSignal', () => {
  it('aborts with the parent, with its reason', () => {
    const parent = new AbortController();
    const { signal } = linkedSignal(parent.signal);
    const reason = new BoxError('ABORTED', 'runtime', 'stopped on request');
    parent.abort(reason);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(reason);
  });

  it('is aborted already when the parent is', () => {
    const { signal } = linkedSignal(abortedWith('gone'));
    expect(signal.reason).toBe('gone');
  });

  it('release unlinks: calls that never remove their listener leave none on the parent', () => {
    const parent = new AbortController();
    const children: AbortSignal[] = [];
    for (let i = 0; i < 50; i++) {
      const call = linkedSignal(parent.signal);
      call.signal.addEventListener('abort', () => undefined); // what the MCP SDK's request() does
      children.push(call.signal);
      call.release();
    }
    expect(getEventListeners(parent.signal, 'abort')).toHaveLength(0);
    parent.abort();
    expect(children.some((c) => c.aborted)).toBe(false);
  });
});
