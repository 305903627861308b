/**
 * The server-name rule, in one place: a config's `mcpServers` keys, `POST /v1/servers` and the
 * supervisor's `add` all check names with it. A name is a path segment of the API and a folder of
 * the state dir, so it is short and has no `/`.
 */
import { BoxError } from '../errors/box-error.js';

export const SERVER_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
export const SERVER_NAME_RULE = 'server names are 1-64 of letters, digits, _ . - (starting with a letter or digit)';

export const isServerName = (name: string): boolean => SERVER_NAME_PATTERN.test(name);

/** Throws INVALID_ARGUMENT (phase `config`: a server definition) unless `name` follows the rule. */
export function assertServerName(name: string): void {
  if (!isServerName(name))
    throw new BoxError(
      'INVALID_ARGUMENT',
      'config',
      `Invalid server name ${JSON.stringify(name)}: ${SERVER_NAME_RULE}`,
    );
}
