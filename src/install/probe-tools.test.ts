import { describe, expect, it } from 'vitest';
import type { ToolVersions } from './detect-install.js';
import { parseToolVersions } from './probe-tools.js';

const NONE: ToolVersions = { python: null, pip: null, node: null, npm: null, uv: null, pnpm: null, yarn: null };

describe('parseToolVersions', () => {
  it.each([
    { name: 'empty output', output: '', expected: NONE },
    {
      name: 'every tool',
      output: 'python=3.12.3\npip=24.0\nnode=20.11.1\nnpm=10.2.4\nuv=0.4.18\npnpm=9.1.0\nyarn=1.22.22\n',
      expected: {
        python: '3.12.3',
        pip: '24.0',
        node: '20.11.1',
        npm: '10.2.4',
        uv: '0.4.18',
        pnpm: '9.1.0',
        yarn: '1.22.22',
      },
    },
    {
      name: 'python only (missing tools are null)',
      output: 'python=3.11.2\npip=23.0.1\n',
      expected: { ...NONE, python: '3.11.2', pip: '23.0.1' },
    },
    { name: 'node only', output: 'node=22.3.0\nnpm=10.8.1\n', expected: { ...NONE, node: '22.3.0', npm: '10.8.1' } },
    {
      name: 'CRLF and surrounding spaces',
      output: '  python=3.12.3\r\nnode=20.0.0  \r\n',
      expected: { ...NONE, python: '3.12.3', node: '20.0.0' },
    },
    {
      name: 'junk lines are ignored',
      output:
        'Welcome!\nsh: 1: uv: not found\npython 3.12\nPYTHON=3.1\nnode=\nnpm=\nruby=3.3\nxpython=1\n' +
        'python=3.12.3 extra\nyarn=1.22.22\n',
      expected: { ...NONE, yarn: '1.22.22' },
    },
    { name: 'a later line wins', output: 'node=18.0.0\nnode=20.0.0\n', expected: { ...NONE, node: '20.0.0' } },
    {
      name: 'an empty uv version (command found, no output)',
      output: 'uv=\npython=3.12.3\n',
      expected: { ...NONE, python: '3.12.3' },
    },
    {
      name: 'versions with suffixes are kept verbatim',
      output: 'python=3.13.0rc1\npnpm=9.0.0-beta.2\n',
      expected: { ...NONE, python: '3.13.0rc1', pnpm: '9.0.0-beta.2' },
    },
  ])('$name', ({ output, expected }) => {
    expect(parseToolVersions(output)).toEqual(expected);
  });
});
