import { describe, expect, it } from 'vitest';
import { DEFAULT_IGNORES, IgnoreRules, NODE_LOCKFILES } from './ignore-rules.js';

const defaults = IgnoreRules.forFolder(new Set(['server.py']), null);

describe('IgnoreRules.forFolder defaults', () => {
  it.each([
    { rel: '.git', isDir: true, expected: true },
    { rel: 'sub/.git', isDir: true, expected: true },
    { rel: '.git', isDir: false, expected: false }, // a worktree's `.git` file is not a folder
    { rel: '.hg', isDir: true, expected: true },
    { rel: '.svn', isDir: true, expected: true },
    { rel: '__pycache__', isDir: true, expected: true },
    { rel: 'pkg/deep/__pycache__', isDir: true, expected: true },
    { rel: 'mod.pyc', isDir: false, expected: true },
    { rel: 'pkg/mod.cpython-312.pyc', isDir: false, expected: true },
    { rel: 'mod.py', isDir: false, expected: false },
    { rel: 'mod.pycx', isDir: false, expected: false },
    { rel: '.venv', isDir: true, expected: true },
    { rel: 'sub/.venv', isDir: true, expected: true },
    { rel: 'venv', isDir: true, expected: true },
    { rel: 'venv', isDir: false, expected: false },
    { rel: 'myvenv', isDir: true, expected: false },
    { rel: '.pytest_cache', isDir: true, expected: true },
    { rel: '.mypy_cache', isDir: true, expected: true },
    { rel: '.ruff_cache', isDir: true, expected: true },
    { rel: '.tox', isDir: true, expected: true },
    { rel: '.nox', isDir: true, expected: true },
    { rel: '.cache', isDir: true, expected: true },
    { rel: 'a/.cache', isDir: true, expected: true },
    { rel: '.DS_Store', isDir: false, expected: true },
    { rel: 'x/.DS_Store', isDir: false, expected: true },
    { rel: '.mcp-box', isDir: true, expected: true },
    { rel: 'sub/.mcp-box', isDir: true, expected: false },
    { rel: '.mcp-box-stage', isDir: true, expected: true },
    { rel: 'node_modules', isDir: true, expected: false },
    { rel: 'src', isDir: true, expected: false },
    { rel: 'server.py', isDir: false, expected: false },
    { rel: '.gitignore', isDir: false, expected: false },
    { rel: '.env', isDir: false, expected: false },
  ])('$rel (dir: $isDir) → $expected', ({ rel, isDir, expected }) => {
    expect(defaults.ignores(rel, isDir)).toBe(expected);
  });

  it('keeps the default patterns first and adds nothing without a lockfile or ignore file', () => {
    expect(defaults.patterns).toEqual(DEFAULT_IGNORES);
  });
});

describe('IgnoreRules.forFolder: node_modules', () => {
  it.each(NODE_LOCKFILES.map((lock) => ({ lock })))('ignores /node_modules/ when $lock is at the root', ({ lock }) => {
    const rules = IgnoreRules.forFolder(new Set(['package.json', lock]), null);
    expect(rules.ignores('node_modules', true)).toBe(true);
    expect(rules.ignores('sub/node_modules', true)).toBe(false);
    expect(rules.ignores('node_modules', false)).toBe(false);
  });

  it.each([
    { name: 'package.json only', names: ['package.json'] },
    { name: 'a lockfile-like name', names: ['package.json', 'package-lock.json.bak'] },
    { name: 'nothing', names: [] },
  ])('keeps node_modules without a root lockfile: $name', ({ names }) => {
    expect(IgnoreRules.forFolder(new Set(names), null).ignores('node_modules', true)).toBe(false);
  });
});

describe('IgnoreRules.forFolder: .mcpboxignore', () => {
  type Row = { name: string; file: string; rel: string; isDir: boolean; expected: boolean };
  const rows: Row[] = [
    { name: 'plain name at the root', file: 'secrets.json', rel: 'secrets.json', isDir: false, expected: true },
    { name: 'plain name at any depth', file: 'secrets.json', rel: 'a/b/secrets.json', isDir: false, expected: true },
    { name: 'plain name matches folders too', file: 'build', rel: 'pkg/build', isDir: true, expected: true },
    {
      name: 'plain name does not match a longer name',
      file: 'secrets.json',
      rel: 'my-secrets.json',
      isDir: false,
      expected: false,
    },
    // gitignore: a path under an ignored folder is ignored (the walk never descends there anyway).
    {
      name: 'plain name covers what is under a folder of that name',
      file: 'data',
      rel: 'data/file.txt',
      isDir: false,
      expected: true,
    },
    {
      name: 'plain name does not match a longer folder name',
      file: 'data',
      rel: 'database/file.txt',
      isDir: false,
      expected: false,
    },
    {
      name: '** glued to a name stays within one segment (gitignore)',
      file: 'a**b',
      rel: 'a/x/b',
      isDir: false,
      expected: false,
    },
    { name: '** glued to a name matches within a segment', file: 'a**b', rel: 'axyb', isDir: false, expected: true },
    { name: 'matching is case-sensitive', file: 'Secrets.json', rel: 'secrets.json', isDir: false, expected: false },
    { name: 'anchored /x at the root', file: '/data', rel: 'data', isDir: true, expected: true },
    { name: 'anchored /x not deeper', file: '/data', rel: 'sub/data', isDir: true, expected: false },
    { name: 'a middle slash anchors', file: 'docs/build', rel: 'docs/build', isDir: true, expected: true },
    {
      name: 'a middle slash anchors (not deeper)',
      file: 'docs/build',
      rel: 'x/docs/build',
      isDir: true,
      expected: false,
    },
    { name: 'dir/ matches a folder', file: 'logs/', rel: 'logs', isDir: true, expected: true },
    { name: 'dir/ matches a nested folder', file: 'logs/', rel: 'a/logs', isDir: true, expected: true },
    { name: 'dir/ does not match a file', file: 'logs/', rel: 'logs', isDir: false, expected: false },
    { name: '/dir/ anchored folder', file: '/out/', rel: 'out', isDir: true, expected: true },
    { name: '/dir/ anchored folder, not a file', file: '/out/', rel: 'out', isDir: false, expected: false },
    { name: '* matches within a name', file: '*.log', rel: 'server.log', isDir: false, expected: true },
    { name: '* at depth', file: '*.log', rel: 'a/b/server.log', isDir: false, expected: true },
    { name: '* does not match across /', file: 'a/*.log', rel: 'a/b/c.log', isDir: false, expected: false },
    { name: '* within one level', file: 'a/*.log', rel: 'a/c.log', isDir: false, expected: true },
    { name: '* matches an empty run', file: 'x*', rel: 'x', isDir: false, expected: true },
    { name: '? matches one character', file: 'file?.txt', rel: 'file1.txt', isDir: false, expected: true },
    { name: '? needs exactly one character', file: 'file?.txt', rel: 'file12.txt', isDir: false, expected: false },
    { name: '? needs a character', file: 'file?.txt', rel: 'file.txt', isDir: false, expected: false },
    { name: '? does not match /', file: 'a?b', rel: 'a/b', isDir: false, expected: false },
    { name: '**/x at the root', file: '**/cache.db', rel: 'cache.db', isDir: false, expected: true },
    { name: '**/x deep', file: '**/cache.db', rel: 'a/b/c/cache.db', isDir: false, expected: true },
    { name: 'a/**/b directly', file: 'a/**/b', rel: 'a/b', isDir: false, expected: true },
    { name: 'a/**/b deep', file: 'a/**/b', rel: 'a/x/y/b', isDir: false, expected: true },
    { name: 'a/**/b not elsewhere', file: 'a/**/b', rel: 'c/x/b', isDir: false, expected: false },
    { name: 'a/** everything inside', file: 'a/**', rel: 'a/x/y.txt', isDir: false, expected: true },
    { name: 'regex characters are literal', file: 'a+b(c).txt', rel: 'a+b(c).txt', isDir: false, expected: true },
    { name: 'a dot is literal', file: 'a.txt', rel: 'abtxt', isDir: false, expected: false },
    {
      name: 'a comment is not a pattern',
      file: '# secrets.json',
      rel: '# secrets.json',
      isDir: false,
      expected: false,
    },
    {
      name: 'a commented-out name is not ignored',
      file: '#secrets.json',
      rel: 'secrets.json',
      isDir: false,
      expected: false,
    },
    {
      name: 'blank and whitespace lines do nothing',
      file: '\n   \n\t\n',
      rel: 'anything',
      isDir: false,
      expected: false,
    },
    { name: 'surrounding spaces are trimmed', file: '   notes.md   ', rel: 'notes.md', isDir: false, expected: true },
    { name: 'CRLF line endings', file: 'a.txt\r\nb.txt\r\n', rel: 'b.txt', isDir: false, expected: true },
    {
      name: '! re-includes (last match wins)',
      file: '*.log\n!keep.log',
      rel: 'keep.log',
      isDir: false,
      expected: false,
    },
    { name: '! leaves other matches ignored', file: '*.log\n!keep.log', rel: 'drop.log', isDir: false, expected: true },
    {
      name: 'a later pattern wins over a negation',
      file: '*.log\n!keep.log\nkeep.log',
      rel: 'keep.log',
      isDir: false,
      expected: true,
    },
    {
      name: 'a negation before the pattern is overridden',
      file: '!keep.log\n*.log',
      rel: 'keep.log',
      isDir: false,
      expected: true,
    },
    { name: '! re-includes a default', file: '!.cache/', rel: '.cache', isDir: true, expected: false },
    { name: '! re-includes *.pyc', file: '!keep.pyc', rel: 'keep.pyc', isDir: false, expected: false },
    {
      name: 'a folder negation does not re-include a file',
      file: '*.tmp\n!x.tmp/',
      rel: 'x.tmp',
      isDir: false,
      expected: true,
    },
    {
      name: 'node_modules can be ignored without a lockfile',
      file: 'node_modules/',
      rel: 'node_modules',
      isDir: true,
      expected: true,
    },
  ];
  it.each(rows)('$name: $file → $rel (dir: $isDir) = $expected', ({ file, rel, isDir, expected }) => {
    expect(IgnoreRules.forFolder(new Set(['.mcpboxignore']), file).ignores(rel, isDir)).toBe(expected);
  });

  it('appends the file’s lines after the defaults', () => {
    const rules = IgnoreRules.forFolder(new Set(['package-lock.json']), 'a\nb');
    expect(rules.patterns).toEqual([...DEFAULT_IGNORES, '/node_modules/', 'a', 'b']);
  });

  it('null (no file) adds nothing', () => {
    expect(IgnoreRules.forFolder(new Set(), null).ignores('secrets.json', false)).toBe(false);
  });
});

describe('IgnoreRules constructor', () => {
  it('with no patterns ignores nothing', () => {
    const rules = new IgnoreRules([]);
    expect(rules.ignores('.git', true)).toBe(false);
    expect(rules.ignores('x.pyc', false)).toBe(false);
  });

  it('keeps the raw patterns', () => {
    expect(new IgnoreRules(['# c', '', 'x']).patterns).toEqual(['# c', '', 'x']);
  });
});
