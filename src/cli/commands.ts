/**
 * The table of `mcp-box` commands: each declared once, with its options, and a handler that loads
 * its module only when it runs. The client commands (status, tools, call, logs) load
 * client-commands.ts, which talks HTTP to a running serve and never loads the engine client
 * (dockerode) or the supervisor; serve, image, reap and doctor load theirs with `import()`.
 */
import type { LogFormat, LogLevel } from '../log/logger.js';
import { commandHelp, defineCommand, overviewHelp, type CommandSpec, type OptionSpec } from './command-table.js';
import { EXIT } from './exit-codes.js';

const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
const LOG_FORMATS = ['text', 'json'] as const;
// The choices above are the logger's, all of them (a compile error when the logger gains one).
const _allLevels: [LogLevel, LogFormat] extends [(typeof LOG_LEVELS)[number], (typeof LOG_FORMATS)[number]] ? true : never = true;

/** How a client command finds serve and its token (shared by all of them). */
const clientOptions = {
  url: { type: 'string', value: 'URL', summary: "serve's API (default $MCP_BOX_URL, else the config's server host and port)", common: true },
  token: { type: 'string', summary: "the API token (default $MCP_BOX_TOKEN, the config's server.token, else <state dir>/token)", common: true },
  config: { type: 'string', value: 'FILE', summary: "the config naming serve's address and token (default ./mcp-box.json when present)", common: true },
} as const satisfies Record<string, OptionSpec>;

const json = { type: 'boolean', summary: 'print JSON' } as const satisfies OptionSpec;
const CLIENT_EXITS = { [EXIT.failed]: 'the request failed', [EXIT.serveNotRunning]: 'serve is not running' };
const ENGINE_EXITS = { [EXIT.failed]: 'it failed', [EXIT.engineUnreachable]: 'the Docker engine is unreachable' };

export const serveOptions = {
  config: { type: 'string', value: 'FILE', summary: 'the config (mcp-box.json)', required: true },
  'log-format': { type: 'string', choices: LOG_FORMATS, default: 'text', summary: 'text lines or JSON lines' },
  'log-level': { type: 'string', choices: LOG_LEVELS, default: 'info', summary: 'the least level logged' },
} as const satisfies Record<string, OptionSpec>;
export const statusOptions = { json, ...clientOptions } as const;
export const toolsOptions = { json, ...clientOptions } as const;
export const callOptions = { 'timeout-ms': { type: 'integer', value: 'N', summary: "the call's deadline (default the server's box.toolTimeoutSec)" }, json, ...clientOptions } as const;
export const logsOptions = {
  follow: { type: 'boolean', short: 'f', summary: 'keep printing new lines' },
  after: { type: 'integer', value: 'SEQ', default: 0, summary: 'start after this sequence number' },
  json: { type: 'boolean', summary: 'print each line as JSON' },
  ...clientOptions,
} as const;
export const imageBuildOptions = {
  base: { type: 'string', value: 'REF', summary: 'the base image (offline: a local Debian base is made with debootstrap)' },
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

const client = () => import('./client-commands.js');
const engine = () => import('./engine-commands.js');

export const COMMANDS: readonly CommandSpec[] = [
  defineCommand({
    name: 'serve',
    summary: 'run the supervisor and its HTTP API (logs state changes; SIGTERM/SIGINT/SIGHUP stop it)',
    options: serveOptions,
    exits: { ...ENGINE_EXITS, [EXIT.failed]: 'it could not start' },
    run: async (input) => (await import('./serve-command.js')).serve(input),
  }),
  defineCommand({
    name: 'status',
    summary: 'servers: state, phase, last error, uptime, restarts',
    options: statusOptions,
    exits: { ...CLIENT_EXITS, [EXIT.failed]: 'a server is failed (or the request failed)' },
    run: async (input) => (await client()).status(input),
  }),
  defineCommand({
    name: 'tools',
    summary: 'the tools of a server',
    positionals: [{ name: 'NAME', summary: 'the server' }],
    options: toolsOptions,
    exits: CLIENT_EXITS,
    run: async (input) => (await client()).tools(input),
  }),
  defineCommand({
    name: 'call',
    summary: "call a tool; prints the result's text",
    positionals: [
      { name: 'NAME', summary: 'the server' },
      { name: 'TOOL', summary: 'the tool' },
      { name: 'JSON', summary: 'the arguments, a JSON object (default {})', optional: true },
    ],
    options: callOptions,
    exits: { ...CLIENT_EXITS, [EXIT.failed]: 'the call failed or its result is an error' },
    run: async (input) => (await client()).call(input),
  }),
  defineCommand({
    name: 'logs',
    summary: "a server's log stream (lifecycle, stderr, install, non-JSON stdout)",
    positionals: [{ name: 'NAME', summary: 'the server' }],
    options: logsOptions,
    exits: CLIENT_EXITS,
    run: async (input) => (await client()).logs(input),
  }),
  defineCommand({
    name: 'image build',
    summary: 'build (or confirm) the sandbox image; progress on stderr',
    options: imageBuildOptions,
    exits: ENGINE_EXITS,
    run: async (input) => (await engine()).imageBuild(input),
  }),
  defineCommand({
    name: 'reap',
    summary: 'remove containers and volumes left by dead supervisors',
    options: reapOptions,
    exits: ENGINE_EXITS,
    run: async (input) => (await engine()).reap(input),
  }),
  defineCommand({
    name: 'doctor',
    summary: 'check the engine, the image, the sandbox hardening (with --config: the allowed roots and the token)',
    options: doctorOptions,
    exits: { ...ENGINE_EXITS, [EXIT.failed]: 'a check failed' },
    run: async (input) => (await engine()).doctor(input),
  }),
  defineCommand({
    name: 'version',
    summary: 'print the version',
    options: {},
    exits: {},
    run: async () => {
      const { MCP_BOX_VERSION } = await import('../version.js');
      console.log(MCP_BOX_VERSION);
      return EXIT.ok;
    },
  }),
  defineCommand({
    name: 'help',
    summary: 'this overview, or the help of a command',
    positionals: [{ name: 'COMMAND', summary: 'a command (`image build`: both words)', optional: true }],
    options: {},
    exits: { [EXIT.usage]: 'an unknown command' },
    run: async () => EXIT.ok, // answered by main.ts, which knows the topic's words
  }),
];

/** The first line of the overview. */
export async function header(): Promise<string> {
  const { MCP_BOX_VERSION } = await import('../version.js');
  return `mcp-box ${MCP_BOX_VERSION}: a sandboxed supervisor for stdio MCP servers`;
}

const NOTES = [
  'Client commands (status, tools, call, logs) take --url URL, --token TOKEN and --config FILE: serve is',
  "found at --url, $MCP_BOX_URL, else the config's server host and port (--config, default ./mcp-box.json);",
  "the token is --token, $MCP_BOX_TOKEN, the config's server.token, else <state dir>/token.",
];

export async function overview(): Promise<string> {
  return overviewHelp(COMMANDS, await header(), NOTES);
}

export { commandHelp };
