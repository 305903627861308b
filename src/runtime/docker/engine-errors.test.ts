import { describe, expect, it } from 'vitest';
import { BoxError } from '../../errors/box-error.js';
import type { ErrorCode } from '../../errors/box-error.js';
import { engineMessage, isConnectionError, statusCodeOf, toBoxError } from './engine-errors.js';

/** Shapes docker-modem produces. */
const connError = (code: string): Error => Object.assign(new Error(`connect ${code} /var/run/docker.sock`), { code });
const httpError = (statusCode: number, message: string | undefined, reason = 'server error'): Error =>
  Object.assign(new Error(`(HTTP code ${statusCode}) ${reason} - ${message ?? 'raw body'} `), {
    statusCode,
    reason,
    json: message === undefined ? null : { message },
  });

describe('toBoxError', () => {
  it.each(['ECONNREFUSED', 'ENOENT', 'EACCES', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH'])(
    'maps %s to ENGINE_UNREACHABLE in phase box_unavailable whatever the phase',
    (code) => {
      const cause = connError(code);
      const err = toBoxError(cause, 'tool_call', 'start the exec');
      expect(err.code).toBe('ENGINE_UNREACHABLE');
      expect(err.phase).toBe('box_unavailable');
      expect(err.message).toBe(
        `Docker engine is unreachable while trying to start the exec: connect ${code} /var/run/docker.sock`,
      );
      expect(err.cause).toBe(cause);
    },
  );

  it.each<{ status: number; fallback?: ErrorCode; expected: ErrorCode }>([
    { status: 404, expected: 'NOT_FOUND' },
    { status: 404, fallback: 'SESSION_CREATE_FAILED', expected: 'NOT_FOUND' },
    { status: 409, expected: 'CONFLICT' },
    { status: 409, fallback: 'EXEC_FAILED', expected: 'CONFLICT' },
    { status: 500, expected: 'ENGINE_ERROR' },
    { status: 500, fallback: 'SESSION_CREATE_FAILED', expected: 'SESSION_CREATE_FAILED' },
    { status: 400, fallback: 'INVALID_ARGUMENT', expected: 'INVALID_ARGUMENT' },
  ])(
    'maps status $status (fallback $fallback) to $expected with the engine message',
    ({ status, fallback, expected }) => {
      const cause = httpError(status, `engine says ${status}`);
      const err =
        fallback === undefined
          ? toBoxError(cause, 'session_create', 'create the session')
          : toBoxError(cause, 'session_create', 'create the session', fallback);
      expect(err).toBeInstanceOf(BoxError);
      expect(err.code).toBe(expected);
      expect(err.phase).toBe('session_create');
      expect(err.message).toBe(`Failed to create the session: engine says ${status}`);
      expect(err.details).toEqual({ statusCode: status });
      expect(err.cause).toBe(cause);
    },
  );

  it('falls back to the error message without the HTTP prefix when there is no JSON body', () => {
    const err = toBoxError(httpError(500, undefined), 'runtime', 'inspect');
    expect(err.message).toBe('Failed to inspect: raw body ');
  });

  it('maps an error without status or connection code to the fallback, with empty details', () => {
    const cause = new Error('socket hang up\nmore detail');
    const err = toBoxError(cause, 'workspace_stage', 'copy files', 'EXEC_FAILED');
    expect(err.code).toBe('EXEC_FAILED');
    expect(err.phase).toBe('workspace_stage');
    expect(err.message).toBe('Failed to copy files: socket hang up');
    expect(err.details).toEqual({});
  });

  it('describes non-Error values', () => {
    expect(toBoxError('weird', 'runtime', 'do x').message).toBe('Failed to do x: weird');
    expect(toBoxError(null, 'runtime', 'do x').code).toBe('ENGINE_ERROR');
  });

  it('passes BoxErrors through unchanged', () => {
    const original = new BoxError('OOM_KILLED', 'runtime', 'killed');
    expect(toBoxError(original, 'tool_call', 'call', 'EXEC_FAILED')).toBe(original);
    expect(original.code).toBe('OOM_KILLED');
    expect(original.phase).toBe('runtime');
  });
});

describe('helpers', () => {
  it.each([
    { err: connError('ECONNREFUSED'), expected: true },
    { err: connError('ENOENT'), expected: true },
    { err: Object.assign(new Error('x'), { code: 'EEXIST' }), expected: false },
    { err: Object.assign(new Error('x'), { code: 42 }), expected: false },
    { err: new Error('x'), expected: false },
    { err: null, expected: false },
    { err: undefined, expected: false },
  ])('isConnectionError($err) is $expected', ({ err, expected }) => {
    expect(isConnectionError(err)).toBe(expected);
  });

  it.each([
    { err: httpError(404, 'x'), expected: 404 },
    { err: { statusCode: '404' }, expected: undefined },
    { err: new Error('x'), expected: undefined },
    { err: null, expected: undefined },
  ])('statusCodeOf($err) is $expected', ({ err, expected }) => {
    expect(statusCodeOf(err)).toBe(expected);
  });

  it.each([
    { err: httpError(404, 'No such container: abc'), expected: 'No such container: abc' },
    {
      err: Object.assign(new Error('(HTTP code 409) unexpected - container is paused'), {
        statusCode: 409,
        json: { message: '' },
      }),
      expected: 'container is paused',
    },
    { err: Object.assign(new Error('(HTTP code 500) server error - kaboom'), { json: null }), expected: 'kaboom' },
    { err: new Error('plain'), expected: 'plain' },
  ])('engineMessage is $expected', ({ err, expected }) => {
    expect(engineMessage(err)).toBe(expected);
  });
});
