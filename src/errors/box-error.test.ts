import { describe, expect, it } from 'vitest';
import { BoxError, describeError, isBoxError, SERVER_PHASES } from './box-error.js';
import type { ErrorCode, Phase } from './box-error.js';

describe('BoxError', () => {
  it.each<{ code: ErrorCode; phase: Phase; message: string }>([
    { code: 'ENGINE_UNREACHABLE', phase: 'box_unavailable', message: 'engine down' },
    { code: 'INVALID_ARGUMENT', phase: 'session_create', message: 'bad profile' },
    { code: 'TIMEOUT', phase: 'tool_call', message: 'too slow' },
    { code: 'IMAGE_MISSING', phase: 'image', message: 'no image' },
  ])('carries code $code, phase $phase and the message', ({ code, phase, message }) => {
    const err = new BoxError(code, phase, message);
    expect(err).toBeInstanceOf(Error);
    expect(err).toBeInstanceOf(BoxError);
    expect(err.name).toBe('BoxError');
    expect(err.code).toBe(code);
    expect(err.phase).toBe(phase);
    expect(err.message).toBe(message);
    expect(err.details).toEqual({});
    expect(err.cause).toBeUndefined();
    expect('cause' in err).toBe(false);
    expect(String(err)).toBe(`BoxError: ${message}`);
    expect(err.stack).toContain('BoxError');
  });

  it('keeps cause and details', () => {
    const cause = new Error('root cause');
    const err = new BoxError('EXEC_FAILED', 'dep_install', 'install failed', { cause, details: { exitCode: 1 } });
    expect(err.cause).toBe(cause);
    expect(err.details).toEqual({ exitCode: 1 });
  });

  it.each([{ cause: new Error('secret stack') }, { cause: 'a string cause' }, { cause: null }])(
    'toJSON excludes cause and stack ($cause)',
    ({ cause }) => {
      const err = new BoxError('ENGINE_ERROR', 'runtime', 'boom', { cause, details: { statusCode: 500 } });
      const json = err.toJSON();
      expect(json).toEqual({ code: 'ENGINE_ERROR', phase: 'runtime', message: 'boom', details: { statusCode: 500 } });
      expect(Object.keys(json).sort()).toEqual(['code', 'details', 'message', 'phase']);
      const serialized = JSON.stringify(err);
      expect(JSON.parse(serialized)).toEqual(json);
      expect(serialized).not.toContain('stack');
      expect(serialized).not.toContain('secret stack');
      expect(serialized).not.toContain('a string cause');
    },
  );

  it('isBoxError tells BoxErrors apart', () => {
    expect(isBoxError(new BoxError('ABORTED', 'shutdown', 'x'))).toBe(true);
    expect(isBoxError(new Error('x'))).toBe(false);
    expect(isBoxError({ code: 'ABORTED', phase: 'shutdown', message: 'x' })).toBe(false);
    expect(isBoxError(undefined)).toBe(false);
  });

  it('lists the server phases in lifecycle order', () => {
    expect(SERVER_PHASES[0]).toBe('box_unavailable');
    expect(SERVER_PHASES.indexOf('session_create')).toBeLessThan(SERVER_PHASES.indexOf('process_start'));
    expect(SERVER_PHASES.indexOf('mcp_init')).toBeLessThan(SERVER_PHASES.indexOf('tool_call'));
  });
});

describe('describeError', () => {
  it.each([
    { value: new Error('first line\nsecond line'), expected: 'first line' },
    { value: new TypeError('plain'), expected: 'plain' },
    { value: 'a string', expected: 'a string' },
    { value: 42, expected: '42' },
    { value: undefined, expected: 'undefined' },
  ])('describes $value as $expected', ({ value, expected }) => {
    expect(describeError(value)).toBe(expected);
  });
});
