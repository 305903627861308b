/**
 * The table of `mcp-box` commands: each declared once, with its options, and a handler that loads
 * its module only when it runs. The client commands (status, tools, call, logs) load
 * client-commands.ts, which talks HTTP to a running serve and never loads the engine client
 * (dockerode) or the supervisor; serve, image, reap and doctor load theirs with `import()`.
 */
import { commandHelp, defineCommand, overviewHelp, type CommandSpec } from './command-table.js';
import {
  callOptions,
  CLIENT_EXITS,
  doctorOptions,
  ENGINE_EXITS,
  imageBuildOptions,
  logsOptions,
  reapOptions,
  serveOptions,
  statusOptions,
  toolsOptions,
} from './command-options.js';
import { EXIT } from './exit-codes.js';

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
