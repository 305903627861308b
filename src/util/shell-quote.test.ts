import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { shellQuote } from './shell-quote.js';

describe('shellQuote', () => {
  it.each([
    ['', "''"],
    ['abc', "'abc'"],
    ["it's", `'it'\\''s'`],
    ["''", `''\\'''\\'''`],
    ['$HOME', "'$HOME'"],
    ['a b', "'a b'"],
  ])('%j → %s', (input, expected) => {
    expect(shellQuote(input)).toBe(expected);
  });

  it.each(["it's", '$(id)', '`id`', 'a "b" c', 'back\\slash', 'new\nline', "'", '*', '; rm -rf /', '-n'])(
    'round-trips %j through sh',
    (value) => {
      expect(execFileSync('sh', ['-c', `printf '%s' ${shellQuote(value)}`], { encoding: 'utf8' })).toBe(value);
    },
  );
});
