/** Validates a config value (already JSON-parsed) and turns zod issues into one readable BoxError. */
import type { z } from 'zod';
import { BoxError } from '../errors/box-error.js';
import { configSchema, serverSchema, type McpBoxConfig, type ServerDefinition } from './schema.js';
import { configError, operatorBoxProblems, serverBoxProblems } from './server-policy.js';

/** Validates the config, then the policy: each server's own `box` may only narrow the operator's. */
export function parseConfig(value: unknown): McpBoxConfig {
  const config = parseWith(configSchema, value, '');
  const problems = [
    ...operatorBoxProblems(config.box),
    ...Object.entries(config.mcpServers).flatMap(([name, def]) => serverBoxProblems(name, def.box, config.box)),
  ];
  if (problems.length > 0) throw configError(problems);
  return config;
}

export function parseServerDefinition(value: unknown, name = 'server'): ServerDefinition {
  return parseWith(serverSchema, value, `mcpServers.${name}`);
}

function parseWith<S extends z.ZodType>(schema: S, value: unknown, prefix: string): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const path = [prefix, ...issue.path.map(String)].filter((p) => p !== '').join('.');
    const unknown =
      issue.code === 'unrecognized_keys' ? ` (${issue.keys.map((k) => JSON.stringify(k)).join(', ')})` : '';
    return { path: path || '(root)', message: `${issue.message}${unknown}` };
  });
  throw new BoxError(
    'INVALID_ARGUMENT',
    'config',
    `Invalid configuration: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
    {
      details: { problems },
    },
  );
}
