/**
 * The options of every command, declared once: the table in commands.ts and the handlers both
 * read them from here (the handlers type their parsed options by them).
 */
import type { LogFormat, LogLevel } from '../log/logger.js';
import type { OptionSpec } from './command-table.js';
import { EXIT } from './exit-codes.js';

const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
const LOG_FORMATS = ['text', 'json'] as const;
// The choices above are the logger's, all of them (a compile error when the logger gains one).
const _allLevels: [LogLevel, LogFormat] extends [(typeof LOG_LEVELS)[number], (typeof LOG_FORMATS)[number]]
  ? true
  : never = true;

/** How a client command finds serve and its token (shared by all of them). */
const clientOptions = {
  url: {
    type: 'string',
    value: 'URL',
    summary: "serve's API (default $MCP_BOX_URL, else the config's server host and port)",
    common: true,
  },
  token: {
    type: 'string',
    summary: "the API token (default $MCP_BOX_TOKEN, the config's server.token, else <state dir>/token)",
    common: true,
  },
  config: {
    type: 'string',
    value: 'FILE',
    summary: "the config naming serve's address and token (default ./mcp-box.json when present)",
    common: true,
  },
} as const satisfies Record<string, OptionSpec>;

const json = { type: 'boolean', summary: 'print JSON' } as const satisfies OptionSpec;
export const CLIENT_EXITS = { [EXIT.failed]: 'the request failed', [EXIT.serveNotRunning]: 'serve is not running' };
export const ENGINE_EXITS = {
  [EXIT.failed]: 'it failed',
  [EXIT.engineUnreachable]: 'the Docker engine is unreachable',
};

export const serveOptions = {
  config: { type: 'string', value: 'FILE', summary: 'the config (mcp-box.json)', required: true },
  'log-format': { type: 'string', choices: LOG_FORMATS, default: 'text', summary: 'text lines or JSON lines' },
  'log-level': { type: 'string', choices: LOG_LEVELS, default: 'info', summary: 'the least level logged' },
} as const satisfies Record<string, OptionSpec>;
export const statusOptions = { json, ...clientOptions } as const;
export const toolsOptions = { json, ...clientOptions } as const;
export const callOptions = {
  'timeout-ms': {
    type: 'integer',
    value: 'N',
    summary: "the call's deadline (default the server's box.toolTimeoutSec)",
  },
  json,
  ...clientOptions,
} as const;
export const logsOptions = {
  follow: { type: 'boolean', short: 'f', summary: 'keep printing new lines' },
  after: { type: 'integer', value: 'SEQ', default: 0, summary: 'start after this sequence number' },
  json: { type: 'boolean', summary: 'print each line as JSON' },
  ...clientOptions,
} as const;
export const imageBuildOptions = {
  base: {
    type: 'string',
    value: 'REF',
    summary: 'the base image (offline: a local Debian base is made with debootstrap)',
  },
  tag: { type: 'string', value: 'REF', summary: 'the image to build (default the sandbox image)' },
  force: { type: 'boolean', summary: 'build even when the image is up to date' },
} as const satisfies Record<string, OptionSpec>;
export const reapOptions = {
  all: { type: 'boolean', summary: 'also remove what owners unknown to this host left' },
  json,
} as const satisfies Record<string, OptionSpec>;
export const doctorOptions = {
  config: { type: 'string', value: 'FILE', summary: 'also check the allowed roots and the token of this config' },
  image: { type: 'string', value: 'REF', summary: "the sandbox image to check (default the config's box.image)" },
  json,
} as const satisfies Record<string, OptionSpec>;
