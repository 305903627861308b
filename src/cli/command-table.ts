/**
 * The machinery of the CLI's command table: a command is declared once (name, summary, positional
 * arguments, options with their types and defaults, exit codes, handler) and everything else is
 * derived from that declaration: parsing (node:util parseArgs), the checks of values and
 * arguments, `mcp-box help`, `mcp-box <command> --help`, and the usage shown with an error.
 *
 * This module imports nothing of mcp-box but the exit codes: loading the table costs nothing, and a
 * handler loads what it needs when it runs.
 */
import { parseArgs } from 'node:util';
import { EXIT } from './exit-codes.js';

export interface OptionSpec {
  /** `integer`: a non-negative integer, given as a string and checked. */
  type: 'string' | 'boolean' | 'integer';
  /** The value's placeholder in usage texts (`FILE`, `N`); defaults to the option's name in capitals. */
  value?: string;
  short?: string;
  summary: string;
  /** Allowed values (a usage error names them). */
  choices?: readonly string[];
  /** Shown in the help text; the handler gets `undefined` when the option is absent unless this is set. */
  default?: string | number;
  /** A usage error when absent. */
  required?: boolean;
  /** Left out of the one-line synopsis (still in `--help`): options shared by a whole group of commands. */
  common?: boolean;
}

export interface PositionalSpec {
  name: string;
  summary: string;
  optional?: boolean;
}

type ValueOf<O extends OptionSpec> = O['type'] extends 'boolean'
  ? boolean
  : O extends { default: string | number }
    ? O['type'] extends 'integer'
      ? number
      : string
    : O['type'] extends 'integer'
      ? number | undefined
      : O extends { required: true }
        ? string
        : string | undefined;

/** The values a handler gets: booleans are true/false, strings and integers typed, defaults applied. */
export type OptionValues<O extends Record<string, OptionSpec>> = { [K in keyof O]: ValueOf<O[K]> };

export interface CommandInput<O extends Record<string, OptionSpec>> {
  values: OptionValues<O>;
  /** The positional arguments, checked against the declared count. */
  args: string[];
}

export interface CommandSpec<O extends Record<string, OptionSpec> = Record<string, OptionSpec>> {
  /** One word (`status`) or a group and a word (`image build`). */
  name: string;
  summary: string;
  positionals?: readonly PositionalSpec[];
  options: O;
  /** What the exit codes besides 0 (ok) and 2 (usage error) mean for this command, by code. */
  exits: Readonly<Partial<Record<number, string>>>;
  /** Loads the handler's module only now (the client verbs never load the engine or the supervisor). */
  run(input: CommandInput<O>): Promise<number>;
}

/** Declares a command with its handler typed by its options. */
export function defineCommand<const O extends Record<string, OptionSpec>>(spec: CommandSpec<O>): CommandSpec {
  return spec as unknown as CommandSpec;
}

/** A mistake in how the CLI was called: printed with the usage of `command` (or the overview), exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    message: string,
    readonly command: CommandSpec | null = null,
  ) {
    super(message);
  }
}

const placeholder = (name: string, o: OptionSpec): string =>
  o.value ?? (o.choices === undefined ? name.toUpperCase() : o.choices.join('|'));
const flag = (name: string, o: OptionSpec): string =>
  o.type === 'boolean' ? `--${name}` : `--${name} ${placeholder(name, o)}`;

/** `mcp-box call NAME TOOL [JSON] [--timeout-ms N] [--json]` (options shared by a group left out). */
export function synopsis(cmd: CommandSpec): string {
  const args = (cmd.positionals ?? []).map((p) => (p.optional === true ? `[${p.name}]` : p.name));
  const opts = Object.entries(cmd.options)
    .filter(([, o]) => o.common !== true)
    .map(([name, o]) => (o.required === true ? flag(name, o) : `[${flag(name, o)}]`));
  return ['mcp-box', cmd.name, ...args, ...opts].join(' ');
}

function columns(rows: [string, string][], indent = '  '): string {
  const width = Math.min(30, Math.max(...rows.map(([left]) => left.length)));
  return rows
    .map(([left, right]) =>
      left.length > width
        ? `${indent}${left}\n${indent}${' '.repeat(width)}  ${right}`
        : `${indent}${left.padEnd(width)}  ${right}`,
    )
    .join('\n');
}

/** The text of `mcp-box <command> --help`. */
export function commandHelp(cmd: CommandSpec): string {
  const lines = [`Usage: ${synopsis(cmd)}`, '', cmd.summary];
  const positionals = cmd.positionals ?? [];
  if (positionals.length > 0) lines.push('', 'Arguments:', columns(positionals.map((p) => [p.name, p.summary])));
  const options: [string, string][] = Object.entries(cmd.options).map(([name, o]) => {
    const left = `${o.short === undefined ? '' : `-${o.short}, `}${flag(name, o)}`;
    const extras = [
      o.required === true ? 'required' : undefined,
      o.default === undefined ? undefined : `default ${o.default}`,
    ].filter((x) => x !== undefined);
    return [left, `${o.summary}${extras.length === 0 ? '' : ` (${extras.join('; ')})`}`];
  });
  options.push(['-h, --help', 'show this help']);
  const exits = { [EXIT.ok]: 'ok', [EXIT.usage]: 'usage error', ...cmd.exits };
  const exitText = Object.entries(exits)
    .sort(([a], [b]) => Number(a) - Number(b))
    .map(([code, what]) => `${code} ${what}`)
    .join(', ');
  lines.push('', 'Options:', columns(options), '', `Exit codes: ${exitText}`);
  return lines.join('\n');
}

/** The text of `mcp-box help`: every command of the table, and what the exit codes mean. */
export function overviewHelp(table: readonly CommandSpec[], header: string, notes: readonly string[]): string {
  return [
    header,
    '',
    'Usage:',
    columns(table.map((c) => [synopsis(c), c.summary])),
    '',
    ...notes,
    '',
    `Exit codes: ${EXIT_CODE_TEXT}`,
    'Run `mcp-box <command> --help` for the options of a command.',
  ].join('\n');
}

export const EXIT_CODE_TEXT =
  `${EXIT.ok} ok, ${EXIT.failed} a check or operation failed, ${EXIT.usage} usage error, ` +
  `${EXIT.engineUnreachable} the Docker engine is unreachable, ` +
  `${EXIT.serveNotRunning} serve is not running (client commands)`;

/** The command `argv` names (the longest name that matches its first words), and the rest of argv. */
export function findCommand(
  table: readonly CommandSpec[],
  argv: readonly string[],
): { cmd: CommandSpec; rest: string[] } | null {
  for (const words of [2, 1]) {
    const name = argv.slice(0, words).join(' ');
    const cmd = argv.length >= words ? table.find((c) => c.name === name) : undefined;
    if (cmd !== undefined) return { cmd, rest: argv.slice(words) };
  }
  return null;
}

/** Parses `argv` (after the command's name) by the command's declaration; `null` means `--help` was asked. */
export function parseCommand(cmd: CommandSpec, argv: string[]): CommandInput<Record<string, OptionSpec>> | null {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const [name, o] of Object.entries(cmd.options))
    options[name] = {
      type: o.type === 'boolean' ? 'boolean' : 'string',
      ...(o.short === undefined ? {} : { short: o.short }),
    };
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError(parseArgsProblem(err), cmd);
  }
  if (parsed.values.help === true) return null;
  const values: Record<string, unknown> = {};
  for (const [name, o] of Object.entries(cmd.options)) {
    const raw = parsed.values[name];
    if (o.type === 'boolean') {
      values[name] = raw === true;
      continue;
    }
    if (raw === undefined) {
      if (o.required === true) throw new UsageError(`${cmd.name} needs ${flag(name, o)}`, cmd);
      values[name] = o.default;
      continue;
    }
    const text = String(raw);
    if (o.choices !== undefined && !o.choices.includes(text))
      throw new UsageError(`--${name} must be one of ${o.choices.join(', ')} (got ${JSON.stringify(text)})`, cmd);
    if (o.type === 'integer') {
      if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text)))
        throw new UsageError(`--${name} must be a non-negative integer (got ${JSON.stringify(text)})`, cmd);
      values[name] = Number(text);
    } else values[name] = text;
  }
  const declared = cmd.positionals ?? [];
  const required = declared.filter((p) => p.optional !== true);
  if (parsed.positionals.length < required.length) {
    throw new UsageError(
      `${cmd.name} needs ${required.map((p) => p.name).join(' ')} (missing ${required
        .slice(parsed.positionals.length)
        .map((p) => p.name)
        .join(' ')})`,
      cmd,
    );
  }
  if (parsed.positionals.length > declared.length)
    throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[declared.length])}`, cmd);
  return { values: values as OptionValues<Record<string, OptionSpec>>, args: parsed.positionals };
}

/** parseArgs's errors, said with the option's name and without its advice about `--`. */
function parseArgsProblem(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `unknown option ${/'([^']+)'/.exec(message)?.[1] ?? message}`;
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    const option = /'(?:-\w, )?(--?[^' ]+)/.exec(message)?.[1] ?? 'an option';
    return message.includes('does not take an argument') ? `${option} takes no value` : `${option} needs a value`;
  }
  return message;
}
