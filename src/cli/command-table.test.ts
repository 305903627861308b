import { describe, expect, it } from 'vitest';
import {
  commandHelp,
  defineCommand,
  findCommand,
  overviewHelp,
  parseCommand,
  synopsis,
  UsageError,
} from './command-table.js';
import { COMMANDS } from './commands.js';

const demo = defineCommand({
  name: 'demo run',
  summary: 'a demo',
  positionals: [
    { name: 'NAME', summary: 'a name' },
    { name: 'EXTRA', summary: 'more', optional: true },
  ],
  options: {
    level: { type: 'string', choices: ['low', 'high'], default: 'low', summary: 'how much' },
    count: { type: 'integer', value: 'N', summary: 'how many' },
    file: { type: 'string', value: 'FILE', summary: 'a file', required: true },
    verbose: { type: 'boolean', short: 'v', summary: 'say more' },
    url: { type: 'string', summary: 'shared', common: true },
  },
  exits: { 1: 'it failed' },
  run: () => Promise.resolve(0),
});

const usageError = (argv: string[]): UsageError => {
  try {
    parseCommand(demo, argv);
  } catch (err) {
    if (err instanceof UsageError) return err;
    throw err;
  }
  throw new Error('no usage error');
};

describe('the command table', () => {
  it('parses by the declaration: types, defaults, booleans false when absent, positionals', () => {
    expect(parseCommand(demo, ['x', '--file', 'f', '--count', '3', '-v'])).toEqual({
      values: { level: 'low', count: 3, file: 'f', verbose: true, url: undefined },
      args: ['x'],
    });
    expect(parseCommand(demo, ['x', 'y', '--file', 'f', '--level', 'high'])?.values).toMatchObject({
      level: 'high',
      count: undefined,
      verbose: false,
    });
    expect(parseCommand(demo, ['--help'])).toBeNull();
  });

  it.each([
    { argv: ['x', '--file', 'f', '--bogus'], message: 'unknown option --bogus' },
    { argv: ['x', '--file', 'f', '--count', '-1'], message: '--count needs a value' },
    { argv: ['x', '--file', 'f', '--count', 'two'], message: '--count must be a non-negative integer (got "two")' },
    { argv: ['x', '--file', 'f', '--level', 'mid'], message: '--level must be one of low, high (got "mid")' },
    { argv: ['x'], message: 'demo run needs --file FILE' },
    { argv: ['--file', 'f'], message: 'demo run needs NAME (missing NAME)' },
    { argv: ['x', 'y', 'z', '--file', 'f'], message: 'unexpected argument "z"' },
    { argv: ['x', '--file', 'f', '--verbose=yes'], message: '--verbose takes no value' },
  ])('$message', ({ argv, message }) => {
    const err = usageError(argv);
    expect(err.message).toBe(message);
    expect(err.command).toBe(demo);
  });

  it('the help text is generated from the declaration', () => {
    expect(synopsis(demo)).toBe('mcp-box demo run NAME [EXTRA] [--level low|high] [--count N] --file FILE [--verbose]');
    const help = commandHelp(demo);
    expect(help).toContain('Usage: mcp-box demo run NAME [EXTRA]');
    expect(help).toMatch(/--level low\|high\s+how much \(default low\)/);
    expect(help).toMatch(/--file FILE\s+a file \(required\)/);
    expect(help).toMatch(/-v, --verbose\s+say more/);
    expect(help).toMatch(/--url URL\s+shared/);
    expect(help).toMatch(/-h, --help/);
    expect(help).toContain('Exit codes: 0 ok, 1 it failed, 2 usage error');
    const overview = overviewHelp([demo], 'header', ['a note']);
    expect(overview).toMatch(/mcp-box demo run NAME .*\n\s+a demo|mcp-box demo run NAME .*\s{2}a demo/);
    expect(overview).toContain('4 serve is not running');
  });

  it('finds two-word commands before one-word ones', () => {
    expect(findCommand(COMMANDS, ['image', 'build', '--force'])).toMatchObject({
      cmd: { name: 'image build' },
      rest: ['--force'],
    });
    expect(findCommand(COMMANDS, ['status', '--json'])).toMatchObject({ cmd: { name: 'status' }, rest: ['--json'] });
    expect(findCommand(COMMANDS, ['image'])).toBeNull();
  });

  it('every existing command and flag is in the table', () => {
    const flags = Object.fromEntries(COMMANDS.map((c) => [c.name, Object.keys(c.options).sort()]));
    expect(flags).toMatchObject({
      serve: ['config', 'log-format', 'log-level'],
      status: ['config', 'json', 'token', 'url'],
      tools: ['config', 'json', 'token', 'url'],
      call: ['config', 'json', 'timeout-ms', 'token', 'url'],
      logs: ['after', 'config', 'follow', 'json', 'token', 'url'],
      'image build': ['base', 'force', 'tag'],
      reap: ['all', 'json'],
      doctor: ['config', 'image', 'json'],
      version: [],
    });
  });
});
