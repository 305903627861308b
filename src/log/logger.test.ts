import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, parseLogFormat, parseLogLevel } from './logger.js';

/** A stdout whose reader went away (`serve | head`): every write fails with EPIPE. */
function brokenPipe(): { stream: Writable; writes: () => number; uncaught: unknown[] } {
  let writes = 0;
  const uncaught: unknown[] = [];
  const stream = new Writable({
    write(_chunk, _encoding, callback) {
      writes++;
      callback(Object.assign(new Error('write EPIPE'), { code: 'EPIPE', errno: -32, syscall: 'write' }));
    },
  });
  // An 'error' event nobody listens to throws from emit(): that is the crash, so record it here.
  const emit = stream.emit.bind(stream);
  stream.emit = (event: string | symbol, ...args: unknown[]): boolean => {
    try {
      return emit(event, ...args);
    } catch (err) {
      uncaught.push(err);
      return false;
    }
  };
  return { stream, writes: () => writes, uncaught };
}

describe('logger', () => {
  it('writes JSON lines with time, level, message and fields', () => {
    const lines: string[] = [];
    const log = createLogger({ format: 'json', level: 'info', write: (l) => lines.push(l) });
    log.info('server ready', { server: 'a', state: 'ready' });
    const parsed = JSON.parse(lines[0] ?? '{}') as Record<string, unknown>;
    expect(parsed).toMatchObject({ level: 'info', msg: 'server ready', server: 'a', state: 'ready' });
    expect(Date.parse(parsed.time as string)).not.toBeNaN();
  });

  it('writes readable text lines and drops levels below the threshold', () => {
    const lines: string[] = [];
    const log = createLogger({ format: 'text', level: 'warn', write: (l) => lines.push(l) });
    log.debug('noise');
    log.info('also noise');
    log.warn('a: ready → backoff', { code: 'PROCESS_EXITED' });
    log.error('boom');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\S+Z warn {2}a: ready → backoff code=PROCESS_EXITED$/);
    expect(lines[1]).toMatch(/ error boom$/);
  });

  it('survives a stream that fails with EPIPE: no unhandled error, later lines go nowhere', async () => {
    const { stream, writes, uncaught } = brokenPipe();
    const log = createLogger({ format: 'text', level: 'info', stream });
    log.info('listening on http://127.0.0.1:5410');
    await new Promise((r) => stream.once('close', r)); // not events.once: it listens for 'error' itself
    expect(() => log.info('SIGTERM: stopping servers')).not.toThrow();
    log.info('stopped');
    await new Promise((r) => setImmediate(r));
    expect(uncaught).toEqual([]);
    expect(writes()).toBe(1);
  });

  it('validates --log-level and --log-format', () => {
    expect(parseLogLevel(undefined)).toBe('info');
    expect(parseLogLevel('debug')).toBe('debug');
    expect(() => parseLogLevel('loud')).toThrow(/--log-level/);
    expect(parseLogFormat('json')).toBe('json');
    expect(() => parseLogFormat('xml')).toThrow(/--log-format/);
  });
});
