/**
 * The environment a server process starts with: what the install activates (venv, node bins, the
 * CA bundle, the index settings), then the server's own `env`. Two variables are merged rather
 * than replaced, so a server that sets them keeps what the sandbox needs:
 *  - `PATH`: the install's prefix (venv bin, node_modules/.bin) comes before the server's own PATH;
 *  - `NODE_OPTIONS`: the sandbox's `--use-openssl-ca` comes before the server's own options.
 */
export function serverEnv(
  activation: Record<string, string>,
  pathPrefix: readonly string[],
  own: Readonly<Record<string, string>>,
): Record<string, string> {
  const env = { ...activation, ...own };
  if (own.PATH !== undefined) env.PATH = [...pathPrefix, own.PATH].join(':');
  if (own.NODE_OPTIONS !== undefined && activation.NODE_OPTIONS !== undefined)
    env.NODE_OPTIONS = `${activation.NODE_OPTIONS} ${own.NODE_OPTIONS}`;
  return env;
}
