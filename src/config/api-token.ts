/**
 * Where a client of `serve` finds the API token: --token, $MCP_BOX_TOKEN, the config's
 * `server.token`, else the file serve generated in its state dir (`<state dir>/token`). Loads
 * nothing of the supervisor, so the CLI's client commands can use it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The name of the generated token's file in the state dir. */
export const TOKEN_FILE_NAME = 'token';

/** Token for CLI clients: --token, $MCP_BOX_TOKEN, the config's token, else the state dir's file. */
export function clientToken(opts: {
  token?: string | undefined;
  configToken?: string | undefined;
  stateDir?: string | undefined;
}): string | null {
  if (opts.token !== undefined && opts.token !== '') return opts.token;
  const env = process.env.MCP_BOX_TOKEN;
  if (env !== undefined && env !== '') return env;
  if (opts.configToken !== undefined) return opts.configToken;
  if (opts.stateDir !== undefined) {
    try {
      return readFileSync(join(opts.stateDir, TOKEN_FILE_NAME), 'utf8').trim();
    } catch {
      return null;
    }
  }
  return null;
}
