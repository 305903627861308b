import { expect } from 'vitest';
import { BoxError } from '../../src/errors/box-error.js';

/** Runs `fn`, which must throw a BoxError, and returns it. */
export function thrown(fn: () => unknown): BoxError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(BoxError);
    return err as BoxError;
  }
  throw new Error('expected a BoxError, nothing was thrown');
}
