/**
 * Reads `mcp-box.json`: JSON with `${ENV}` interpolation in string values (a missing variable is
 * an error naming the field), validated strictly, with relative paths resolved against the config
 * file's folder by the consumers (`configDir`).
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { BoxError } from '../errors/box-error.js';
import { DEFAULT_STATE_DIR } from '../defaults.js';
import { checkFolderRules } from '../workspace/host-policy.js';
import { parseConfig } from './parse-config.js';
import { resolveServer } from './resolve-server.js';
import type { McpBoxConfig } from './schema.js';

export interface LoadedConfig {
  config: McpBoxConfig;
  path: string;
  configDir: string;
  /** Where durable state and the generated token live (default `.mcp-box/` beside the config). */
  stateDir: string;
}

export function loadConfig(path: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const absolute = resolve(path);
  let text: string;
  try {
    text = readFileSync(absolute, 'utf8');
  } catch (err) {
    throw new BoxError(
      'INVALID_ARGUMENT',
      'config',
      `Cannot read the config file ${absolute}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new BoxError(
      'INVALID_ARGUMENT',
      'config',
      `The config file ${absolute} is not valid JSON: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const config = parseConfig(interpolate(raw, env, ''));
  const configDir = dirname(absolute);
  const stateDir = resolve(configDir, config.state.dir ?? DEFAULT_STATE_DIR);
  checkServerFolders(config, configDir, stateDir);
  return { config, path: absolute, configDir, stateDir };
}

/**
 * Refuses, at load time, a server whose folder (given or inferred) is an allowed root, holds the
 * config or state folder, or overlaps another server's — before `serve` listens. The supervisor
 * checks servers added later the same way.
 */
function checkServerFolders(config: McpBoxConfig, configDir: string, stateDir: string): void {
  const others: { name: string; folder: string }[] = [];
  for (const [name, def] of Object.entries(config.mcpServers)) {
    const spec = resolveServer(name, def, config.box, configDir);
    if (spec.hostPath === undefined || spec.hostPath === '') continue;
    try {
      checkFolderRules(spec.hostPath, {
        allowedRoots: spec.allowedRoots,
        protectedFolders: [
          { path: configDir, what: 'the config folder' },
          { path: stateDir, what: 'the state folder' },
        ],
        otherServers: others,
      });
    } catch (err) {
      if (!(err instanceof BoxError)) throw err;
      throw new BoxError(err.code, err.phase, `mcpServers.${name}: ${err.message}`, {
        cause: err,
        details: { ...err.details, server: name },
      });
    }
    others.push({ name, folder: spec.hostPath });
  }
}

/** Replaces `${NAME}` (and `${NAME:-default}`) in every string; `$${` stays a literal `${`. */
export function interpolate(value: unknown, env: NodeJS.ProcessEnv, path: string): unknown {
  if (typeof value === 'string') {
    return value.replace(
      /\$?\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g,
      (match, name: string, fallback: string | undefined) => {
        if (match.startsWith('$$')) return match.slice(1);
        const found = env[name];
        if (found !== undefined && found !== '') return found;
        if (fallback !== undefined) return fallback;
        throw new BoxError(
          'INVALID_ARGUMENT',
          'config',
          `Invalid configuration: ${path || '(root)'}: the environment variable ${name} is not set`,
          {
            details: { problems: [{ path, message: `environment variable ${name} is not set` }] },
          },
        );
      },
    );
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, `${path}.${i}`));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, interpolate(v, env, path === '' ? k : `${path}.${k}`)]),
    );
  }
  return value;
}
