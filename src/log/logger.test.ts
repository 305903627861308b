import { describe, expect, it } from 'vitest';
import { createLogger, parseLogFormat, parseLogLevel } from './logger.js';

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

  it('validates --log-level and --log-format', () => {
    expect(parseLogLevel(undefined)).toBe('info');
    expect(parseLogLevel('debug')).toBe('debug');
    expect(() => parseLogLevel('loud')).toThrow(/--log-level/);
    expect(parseLogFormat('json')).toBe('json');
    expect(() => parseLogFormat('xml')).toThrow(/--log-format/);
  });
});
