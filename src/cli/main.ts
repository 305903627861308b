/**
 * Runs one `mcp-box` command line: finds the command in the table, parses its options, runs its
 * handler, and turns what it throws into a message and an exit code (see exit-codes.ts). Never
 * throws.
 */
import { BoxError, describeError } from '../errors/box-error.js';
import { commandHelp, findCommand, parseCommand, UsageError, type CommandSpec } from './command-table.js';
import { COMMANDS, overview } from './commands.js';
import { EXIT } from './exit-codes.js';

export async function runCli(argv: readonly string[]): Promise<number> {
  let current: CommandSpec | null = null;
  try {
    const [first] = argv;
    if (first === undefined) {
      console.log(await overview());
      return EXIT.usage;
    }
    if (first === 'help' || first === '--help' || first === '-h') return await help(argv.slice(1));
    if (first === '--version') return await runCli(['version']);
    const found = findCommand(COMMANDS, argv);
    if (found === null) {
      const group = COMMANDS.filter((c) => c.name.startsWith(`${first} `));
      if (group.length > 0)
        throw new UsageError(
          `unknown ${first} command: ${argv[1] ?? '(none)'} (${group.map((c) => c.name).join(', ')})`,
        );
      throw new UsageError(`unknown command: ${first}`);
    }
    current = found.cmd;
    const input = parseCommand(found.cmd, found.rest);
    if (input === null) {
      console.log(commandHelp(found.cmd));
      return EXIT.ok;
    }
    return await found.cmd.run(input);
  } catch (err) {
    return await report(err, current);
  }
}

async function help(topic: readonly string[]): Promise<number> {
  if (topic.length === 0) {
    console.log(await overview());
    return EXIT.ok;
  }
  const found = findCommand(COMMANDS, topic[0] === '--help' || topic[0] === '-h' ? ['help'] : topic);
  if (found === null || found.rest.length > 0) throw new UsageError(`no such command: ${topic.join(' ')}`);
  console.log(commandHelp(found.cmd));
  return EXIT.ok;
}

async function report(err: unknown, current: CommandSpec | null): Promise<number> {
  if (err instanceof UsageError) {
    const cmd = err.command ?? current;
    console.error(`mcp-box: ${err.message}\n\n${cmd === null ? await overview() : commandHelp(cmd)}`);
    return EXIT.usage;
  }
  if (err instanceof BoxError) {
    console.error(`mcp-box: [${err.phase}/${err.code}] ${err.message}`);
    if (err.code === 'ENGINE_UNREACHABLE') return EXIT.engineUnreachable;
    if (err.code === 'SERVE_UNREACHABLE') return EXIT.serveNotRunning;
    return EXIT.failed;
  }
  console.error(`mcp-box: ${describeError(err)}`);
  return EXIT.failed;
}
