/**
 * `/mcp`: every ready server behind one MCP endpoint, against the real engine and a real `serve` (in this process),
 * with the SDK's own `StreamableHTTPClientTransport`. Two servers with the same tool names are both reachable under
 * `server__name`; a server that fails is not listed; stopping and starting a server sends `list_changed` and
 * changes the list, and so does a server's own `list_changed`; a call to a server that is down answers -32002 with
 * its state, phase and code.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError, ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { SERVER_UNAVAILABLE } from '../../src/mcp-http/aggregate-server.js';
import { startServe, type ServeHandle } from '../../src/server/serve.js';
import { eventually } from '../helpers/runtime.js';
import { writeServeConfig } from '../helpers/serve-config.js';
import { toolsServer } from '../helpers/tools-server.js';

const TOKEN = 'aggregate-mcp-test-token-0123456789';
/** The MCP Inspector (a devDependency), run as its own launcher runs it. */
const INSPECTOR = 'node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js';
const auth = { Authorization: `Bearer ${TOKEN}` };

const textOf = (result: unknown): string => (result as { content: { text: string }[] }).content[0]?.text ?? '';

describe('/mcp: every ready server behind one endpoint', () => {
  let dir: string;
  let serve: ServeHandle;
  const warnings: string[] = [];
  const clients: Client[] = [];
  const state = (name: string): string => serve.supervisor.get(name).state;

  /**
   * A client of `/mcp` that counts `tools/list_changed`; resolves once its GET stream (where those arrive) is open,
   * so no notification sent after this can be missed.
   */
  async function connect(): Promise<{ client: Client; changes: () => number }> {
    let streamOpen = false;
    const transport = new StreamableHTTPClientTransport(new URL(`${serve.url}/mcp`), {
      requestInit: { headers: auth },
      fetch: async (url, init) => {
        const res = await fetch(url, init);
        if (init?.method === 'GET' && res.status === 200) streamOpen = true;
        return res;
      },
    });
    const client = new Client({ name: 'aggregate-test', version: '1' });
    let changes = 0;
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => void changes++);
    await client.connect(transport);
    clients.push(client);
    await eventually(() => (streamOpen ? true : undefined), 10_000, 20);
    return { client, changes: () => changes };
  }

  const names = async (client: Client): Promise<string[]> => (await client.listTools()).tools.map((t) => t.name);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mcp-box-aggregate-'));
    const configPath = writeServeConfig(
      dir,
      {
        alpha: toolsServer('alpha'),
        beta: toolsServer('beta'),
        broken: { command: 'python3', args: ['-c', 'import sys; sys.exit(3)'], box: { restart: { maxRestarts: 0 } } },
      },
      TOKEN,
    );
    serve = await startServe(loadConfig(configPath), {
      runtimeOptions: { tag: inject('runTag') },
      log: { warn: (text) => warnings.push(text), error: (text) => warnings.push(text) },
    });
    await eventually(
      () =>
        state('alpha') === 'ready' && state('beta') === 'ready' && state('broken') === 'failed' ? true : undefined,
      120_000,
      50,
    );
  }, 180_000);

  afterAll(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await serve?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists the tools of every ready server as server__name and calls each in its own process', async () => {
    const { client } = await connect();
    expect(client.getServerCapabilities()?.tools).toEqual({ listChanged: true });
    const { tools } = await client.listTools();
    const tool = ['add', 'inits', 'slow', 'change', 'ask'];
    expect(tools.map((t) => t.name)).toEqual([...tool.map((t) => `alpha__${t}`), ...tool.map((t) => `beta__${t}`)]);
    expect(tools[0]?._meta).toMatchObject({ 'mcp-box/server': 'alpha', 'mcp-box/name': 'add' });
    expect(tools[0]?.inputSchema).toEqual({ type: 'object' });
    expect(textOf(await client.callTool({ name: 'alpha__add', arguments: { a: 2, b: 3 } }))).toBe('5');
    expect(textOf(await client.callTool({ name: 'beta__add', arguments: { a: 40, b: 2 } }))).toBe('42');
    // Through the supervisor's own client: the process was initialized once, by the supervisor.
    expect(textOf(await client.callTool({ name: 'beta__inits', arguments: {} }))).toBe('1');
    const unknown = await client.callTool({ name: 'gamma__add', arguments: {} }).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(McpError);
    expect((unknown as McpError).code).toBe(-32602);
    expect((unknown as McpError).message).toContain('gamma__add');
  });

  it('tells each client when a server stops and starts, and a call to it meanwhile names its state', async () => {
    const a = await connect();
    const b = await connect();
    expect(await names(a.client)).toContain('beta__add');
    await serve.supervisor.stop('beta');
    await eventually(() => (a.changes() >= 1 && b.changes() >= 1 ? true : undefined), 10_000, 20);
    expect((await names(a.client)).filter((n) => n.startsWith('beta__'))).toEqual([]);
    const down = await a.client.callTool({ name: 'beta__add', arguments: { a: 1, b: 1 } }).catch((e: unknown) => e);
    expect(down).toBeInstanceOf(McpError);
    expect((down as McpError).code).toBe(SERVER_UNAVAILABLE);
    expect((down as McpError).data).toMatchObject({ server: 'beta', state: 'stopped' });
    expect(textOf(await a.client.callTool({ name: 'alpha__add', arguments: { a: 1, b: 2 } }))).toBe('3');

    const before = a.changes();
    serve.supervisor.start('beta');
    await eventually(() => (state('beta') === 'ready' && a.changes() > before ? true : undefined), 120_000, 50);
    expect(await names(b.client)).toContain('beta__add');
    expect(textOf(await b.client.callTool({ name: 'beta__add', arguments: { a: 5, b: 5 } }))).toBe('10');
  });

  it("passes a server's own tools/list_changed on to every /mcp session", async () => {
    const a = await connect();
    const b = await connect();
    expect(textOf(await a.client.callTool({ name: 'alpha__change', arguments: {} }))).toBe('changed');
    await eventually(() => (a.changes() === 1 && b.changes() === 1 ? true : undefined), 10_000, 20);
  });

  it("the MCP Inspector's CLI lists and calls tools through /mcp and through one server's endpoint", async () => {
    // The token goes in the Inspector's config file (as a user's would), never in its argv.
    const config = join(dir, 'inspector.json');
    writeFileSync(
      config,
      JSON.stringify({
        mcpServers: {
          all: { type: 'http', url: `${serve.url}/mcp`, headers: auth },
          alpha: { type: 'http', url: `${serve.url}/v1/servers/alpha/mcp`, headers: auth },
        },
      }),
    );
    const inspector = async (server: string, ...args: string[]): Promise<Record<string, unknown>> => {
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [INSPECTOR, '--cli', '--config', config, '--server', server, ...args],
        { timeout: 60_000, env: { ...process.env, HOME: dir } },
      );
      return JSON.parse(stdout) as Record<string, unknown>;
    };
    const listed = (await inspector('all', '--method', 'tools/list')) as { tools: { name: string }[] };
    expect(listed.tools.map((t) => t.name)).toContain('beta__add');
    const called = await inspector(
      'all',
      '--method',
      'tools/call',
      '--tool-name',
      'beta__add',
      '--tool-arg',
      'a=20',
      'b=22',
    );
    expect(textOf(called)).toBe('42');
    const one = (await inspector('alpha', '--method', 'tools/list')) as { tools: { name: string }[] };
    expect(one.tools.map((t) => t.name)).toEqual(['add', 'inits', 'slow', 'change', 'ask']);
  });

  it('a session of /mcp is valid there only; the token and the Origin rules hold', async () => {
    const { client } = await connect();
    const sessionId = (client.transport as StreamableHTTPClientTransport).sessionId ?? '';
    expect(sessionId).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    const ping = JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'ping' });
    const headers = {
      ...auth,
      'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream',
      'Mcp-Session-Id': sessionId,
      'Mcp-Protocol-Version': '2025-11-25',
    };
    const elsewhere = await fetch(`${serve.url}/v1/servers/alpha/mcp`, { method: 'POST', headers, body: ping });
    expect(elsewhere.status).toBe(404);
    const { Authorization: _, ...noToken } = headers;
    expect((await fetch(`${serve.url}/mcp`, { method: 'POST', headers: noToken, body: ping })).status).toBe(401);
    const foreign = { ...headers, Origin: 'https://evil.example' };
    expect((await fetch(`${serve.url}/mcp`, { method: 'POST', headers: foreign, body: ping })).status).toBe(403);
    expect((await fetch(`${serve.url}/mcp`, { method: 'POST', headers, body: ping })).status).toBe(200);
  });
});
