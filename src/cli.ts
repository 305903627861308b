#!/usr/bin/env node
/**
 * The `mcp-box` command line. The commands are a table (src/cli/commands.ts), the exit codes are
 * src/cli/exit-codes.ts: 0 ok, 1 a check or operation failed, 2 usage error, 3 the engine is
 * unreachable, 4 serve is not running (client commands).
 */
import { runCli } from './cli/main.js';

// A reader that went away (`mcp-box serve | head`, a closed terminal) turns every later write to
// stdout/stderr into an EPIPE/EIO 'error' event; unhandled, the first one would crash the CLI.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);

void runCli(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
