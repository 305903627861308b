/**
 * MCP over Streamable HTTP to a sandboxed server (`/v1/servers/{name}/mcp`), against the real engine and a real
 * `serve` (in this process): the SDK's own `StreamableHTTPClientTransport` connects, calls tools, gets its progress
 * and answers the server's requests; several HTTP clients share the process with the supervisor's own client (one
 * initialize reaches it); Last-Event-ID resumes a cut SSE stream; DELETE ends a session; a restart ends them all
 * (404, and a new initialize works); the token and Origin rules hold.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  McpError,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { startServe, type ServeHandle } from '../../src/server/serve.js';
import { eventually } from '../helpers/runtime.js';
import { writeServeConfig } from '../helpers/serve-config.js';
import { toolsServer } from '../helpers/tools-server.js';
import { connectRaw } from '../helpers/ws-client.js';

const TOKEN = 'streamable-http-test-token-0123456789';

const textOf = (result: unknown): string => (result as { content: { text: string }[] }).content[0]?.text ?? '';

describe('Streamable HTTP per server, with the SDK client', () => {
  let dir: string;
  let serve: ServeHandle;
  const endpoint = (name = 'httpy'): URL => new URL(`${serve.url}/v1/servers/${name}/mcp`);
  const auth = { Authorization: `Bearer ${TOKEN}` };
  const clients: Client[] = [];

  async function connect(
    opts: { roots?: boolean; sampling?: boolean } = {},
  ): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
    const transport = new StreamableHTTPClientTransport(endpoint(), { requestInit: { headers: auth } });
    const client = new Client(
      { name: 'sdk-http-test', version: '1' },
      {
        capabilities: {
          ...(opts.roots === true ? { roots: {} } : {}),
          ...(opts.sampling === true ? { sampling: {}, elicitation: { form: {} } } : {}),
        },
      },
    );
    await client.connect(transport);
    clients.push(client);
    return { client, transport };
  }

  /** One raw POST of JSON-RPC to the endpoint, as a client without the SDK would send it. */
  function post(body: unknown, headers: Record<string, string> = {}): Promise<Response> {
    return fetch(endpoint(), {
      method: 'POST',
      headers: {
        ...auth,
        'Content-Type': 'application/json',
        Accept: 'application/json, text/event-stream',
        ...headers,
      },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  }

  const initialize = (version = '2025-11-25'): Record<string, unknown> => ({
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: version, capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
  });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mcp-box-http-'));
    const configPath = writeServeConfig(dir, { httpy: toolsServer('httpy') }, TOKEN);
    serve = await startServe(loadConfig(configPath), { runtimeOptions: { tag: inject('runTag') } });
    await eventually(() => (serve.supervisor.get('httpy').state === 'ready' ? true : undefined), 120_000, 50);
  }, 180_000);

  afterAll(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await serve?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('connects with the SDK transport, lists and calls tools; every client shares one process', async () => {
    const { client, transport } = await connect();
    expect(transport.sessionId).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    expect(client.getServerVersion()).toMatchObject({ name: 'httpy' });
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(['add', 'inits', 'slow', 'change', 'ask']);
    expect(textOf(await client.callTool({ name: 'add', arguments: { a: 2, b: 3 } }))).toBe('5');
    const second = await connect();
    expect(second.transport.sessionId).not.toBe(transport.sessionId);
    // The supervisor's client initialized the process; neither HTTP client reached it with another initialize.
    expect(textOf(await second.client.callTool({ name: 'inits', arguments: {} }))).toBe('1');
    expect(textOf(await serve.supervisor.callTool('httpy', 'add', { a: 1, b: 1 }))).toBe('2');
  });

  it('routes progress to the client that asked, with concurrent calls from two clients', async () => {
    const a = await connect();
    const b = await connect();
    const seenA: number[] = [];
    const seenB: number[] = [];
    const [ra, rb] = await Promise.all([
      a.client.callTool({ name: 'slow', arguments: { ms: 30, tag: 'a' } }, undefined, {
        onprogress: (p) => seenA.push(p.progress),
      }),
      b.client.callTool({ name: 'slow', arguments: { ms: 30, tag: 'b' } }, undefined, {
        onprogress: (p) => seenB.push(p.progress),
      }),
    ]);
    expect(textOf(ra)).toBe('slow done a');
    expect(textOf(rb)).toBe('slow done b');
    expect(seenA).toEqual([1, 2, 3]);
    expect(seenB).toEqual([1, 2, 3]);
  });

  it("answers the server's own request (roots/list) from the client whose call is in flight", async () => {
    const { client } = await connect({ roots: true });
    client.setRequestHandler(ListRootsRequestSchema, () => ({ roots: [{ uri: 'file:///work', name: 'work' }] }));
    const result = await client.callTool({ name: 'ask', arguments: {} });
    expect(JSON.parse(textOf(result))).toEqual({ roots: [{ uri: 'file:///work', name: 'work' }] });
  });

  it("answers the server's sampling and elicitation during a call from the client whose call it is", async () => {
    const clientOf = async (who: string): Promise<Client> => {
      const { client } = await connect({ sampling: true });
      client.setRequestHandler(CreateMessageRequestSchema, () => ({
        role: 'assistant',
        content: { type: 'text', text: `sampled by ${who}` },
        model: `model-of-${who}`,
      }));
      client.setRequestHandler(ElicitRequestSchema, () => ({
        action: 'accept',
        content: { answer: `elicited by ${who}` },
      }));
      return client;
    };
    const a = await clientOf('a');
    const b = await clientOf('b');
    const sampling = {
      method: 'sampling/createMessage',
      params: { messages: [{ role: 'user', content: { type: 'text', text: 'hi' } }], maxTokens: 10 },
    };
    const elicitation = {
      method: 'elicitation/create',
      params: {
        mode: 'form',
        message: 'your answer?',
        requestedSchema: { type: 'object', properties: { answer: { type: 'string' } } },
      },
    };
    expect(JSON.parse(textOf(await a.callTool({ name: 'ask', arguments: sampling })))).toMatchObject({
      model: 'model-of-a',
      content: { text: 'sampled by a' },
    });
    expect(JSON.parse(textOf(await b.callTool({ name: 'ask', arguments: sampling })))).toMatchObject({
      model: 'model-of-b',
    });
    expect(JSON.parse(textOf(await b.callTool({ name: 'ask', arguments: elicitation })))).toEqual({
      action: 'accept',
      content: { answer: 'elicited by b' },
    });
    expect(JSON.parse(textOf(await a.callTool({ name: 'ask', arguments: elicitation })))).toEqual({
      action: 'accept',
      content: { answer: 'elicited by a' },
    });
  });

  it('carries list_changed to the client over its GET stream', async () => {
    const { client } = await connect();
    let changed = 0;
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      changed++;
    });
    // The SDK opens the GET stream after initialized; give it a moment to be there before the change.
    await eventually(
      async () => {
        await client.callTool({ name: 'change', arguments: {} });
        return changed > 0 ? true : undefined;
      },
      15_000,
      200,
    );
    expect(changed).toBeGreaterThan(0);
  });

  it('refuses without the token (401), from a foreign Origin (403), and no session (400)', async () => {
    const noToken = await fetch(endpoint(), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
      body: JSON.stringify(initialize()),
    });
    expect(noToken.status).toBe(401);
    expect((await post(initialize(), { Origin: 'http://evil.example' })).status).toBe(403);
    const noSession = await post({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
    expect(noSession.status).toBe(400);
    expect(await noSession.json()).toMatchObject({ error: { code: -32000 } });
  });

  it('answers a body that is not JSON with a JSON-RPC parse error, and a wrong Accept with 406', async () => {
    const bad = await post('{"jsonrpc": "2.0", ');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32700 } });
    const wrongAccept = await post(initialize(), { Accept: 'application/json' });
    expect(wrongAccept.status).toBe(406);
    // The refused initialize left no session behind.
    expect(serve.supervisor.get('httpy').state).toBe('ready');
  });

  it('negotiates an earlier revision (2025-03-26) and refuses an unknown protocol-version header', async () => {
    const res = await post(initialize('2025-03-26'));
    expect(res.status).toBe(200);
    const session = res.headers.get('mcp-session-id') ?? '';
    expect(session).not.toBe('');
    const text = await res.text();
    expect(text).toContain('"serverInfo"');
    const unknown = await post(
      { jsonrpc: '2.0', id: 3, method: 'tools/list' },
      { 'Mcp-Session-Id': session, 'Mcp-Protocol-Version': '1999-01-01' },
    );
    expect(unknown.status).toBe(400);
    const ok = await post(
      { jsonrpc: '2.0', id: 4, method: 'tools/list' },
      { 'Mcp-Session-Id': session, 'Mcp-Protocol-Version': '2025-03-26' },
    );
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('"inits"');
  });

  it('resumes a cut SSE stream with Last-Event-ID: the events after it, the answer included', async () => {
    const init = await post(initialize());
    const session = init.headers.get('mcp-session-id') ?? '';
    await init.text();
    const headers = { 'Mcp-Session-Id': session, 'Mcp-Protocol-Version': '2025-11-25' };
    await post({ jsonrpc: '2.0', method: 'notifications/initialized' }, headers);
    const controller = new AbortController();
    const call = await fetch(endpoint(), {
      method: 'POST',
      signal: controller.signal,
      headers: {
        ...auth,
        'Content-Type': 'application/json',
        Accept: 'application/json, text/event-stream',
        ...headers,
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 'resume-me',
        method: 'tools/call',
        params: { name: 'slow', arguments: { ms: 400, tag: 'resumed' }, _meta: { progressToken: 'tok' } },
      }),
    });
    // Read until the first progress event, note the last event id, and cut the stream.
    const reader = (call.body as ReadableStream<Uint8Array>).getReader();
    let seen = '';
    while (!seen.includes('"progress":1')) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the stream ended early: ${seen}`);
      seen += new TextDecoder().decode(value);
    }
    const ids = [...seen.matchAll(/^id: (\S+)$/gm)].map((m) => m[1] as string);
    expect(ids.length).toBeGreaterThan(0);
    controller.abort();
    // As the SDK's client does, reconnect until the server has seen the old connection go (409 until then).
    const resume = (): Promise<Response> =>
      fetch(endpoint(), {
        headers: { ...auth, Accept: 'text/event-stream', ...headers, 'Last-Event-ID': ids[ids.length - 1] as string },
      });
    const resumed = await eventually(
      async () => {
        const res = await resume();
        if (res.status !== 409) return res;
        await res.text();
        return undefined;
      },
      10_000,
      50,
    );
    expect(resumed.status).toBe(200);
    const rest = await resumed.text();
    expect(rest).toContain('"progress":2');
    expect(rest).toContain('"progress":3');
    expect(rest).toContain('slow done resumed');
    expect(rest).not.toContain('"progress":1,');
  });

  it('ends a session with DELETE: its id answers 404 from then on', async () => {
    const { transport } = await connect();
    const id = transport.sessionId ?? '';
    await transport.terminateSession();
    const after = await post({ jsonrpc: '2.0', id: 5, method: 'tools/list' }, { 'Mcp-Session-Id': id });
    expect(after.status).toBe(404);
    expect(await after.json()).toMatchObject({ error: { code: -32001 } });
  });

  it('a session id is valid for its own server only, and an unknown server is 404', async () => {
    const { transport } = await connect();
    const other = await fetch(endpoint('nosuch'), {
      method: 'POST',
      headers: {
        ...auth,
        'Content-Type': 'application/json',
        Accept: 'application/json, text/event-stream',
        'Mcp-Session-Id': transport.sessionId ?? '',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 6, method: 'tools/list' }),
    });
    expect(other.status).toBe(404);
    expect(await other.json()).toMatchObject({ error: { code: 'NOT_FOUND' } });
  });

  it('answers each of three clients once when the process is killed with their calls in flight', async () => {
    const http = await connect();
    const ws = await connectRaw(serve.supervisor.get('httpy').relay?.url ?? '');
    const wsSend = (m: Record<string, unknown>): void => ws.ws.send(JSON.stringify({ jsonrpc: '2.0', ...m }));
    const wsAnswers = (id: string): Record<string, unknown>[] =>
      ws.frames.map((f) => JSON.parse(f) as Record<string, unknown>).filter((m) => m.id === id && !('method' in m));
    wsSend({
      id: 'init',
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'ws', version: '1' } },
    });
    await eventually(() => (wsAnswers('init').length === 1 ? true : undefined), 10_000, 10);
    wsSend({ method: 'notifications/initialized' });

    const slow = { name: 'slow', arguments: { ms: 20_000 } };
    const before = serve.supervisor.get('httpy');
    const settled = (p: Promise<unknown>) =>
      p.then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      );
    const httpCall = settled(http.client.callTool(slow, undefined, { timeout: 60_000 }));
    const ownCall = settled(serve.supervisor.callTool('httpy', 'slow', { ms: 20_000 }, { timeoutMs: 60_000 }));
    wsSend({ id: 'k1', method: 'tools/call', params: slow });
    await new Promise((r) => setTimeout(r, 500)); // every call is in the process's hands
    // The server's uid, every process of it: the process dies, its session container lives on.
    await promisify(execFile)('docker', [
      'exec',
      '-u',
      String(before.uid),
      before.session ?? '',
      'sh',
      '-c',
      'kill -9 -1; true',
    ]);

    const [h, o] = await Promise.all([httpCall, ownCall]);
    expect(h).toHaveProperty('error');
    expect((h as { error: unknown }).error).toBeInstanceOf(McpError);
    expect(o).toHaveProperty('error');
    await eventually(() => (wsAnswers('k1').length > 0 ? true : undefined), 15_000, 10);
    expect(wsAnswers('k1')[0]).toHaveProperty('error');
    // Restarted by the supervisor; by then a second answer to any of them would have come.
    await eventually(
      () =>
        serve.supervisor.get('httpy').state === 'ready' && serve.supervisor.get('httpy').restarts > before.restarts
          ? true
          : undefined,
      60_000,
      50,
    );
    expect(wsAnswers('k1')).toHaveLength(1);
    ws.ws.close();
  });

  it('after a restart old sessions answer 404 and the client initializes again', async () => {
    const { client, transport } = await connect();
    const old = transport.sessionId ?? '';
    await serve.supervisor.restart('httpy');
    await eventually(() => (serve.supervisor.get('httpy').state === 'ready' ? true : undefined), 60_000, 50);
    const res = await post({ jsonrpc: '2.0', id: 7, method: 'tools/list' }, { 'Mcp-Session-Id': old });
    expect(res.status).toBe(404);
    await expect(client.listTools()).rejects.toThrow(/404|Session not found/);
    const fresh = await connect();
    expect(textOf(await fresh.client.callTool({ name: 'add', arguments: { a: 20, b: 22 } }))).toBe('42');
  });

  it('refuses a new session while the server is not ready, naming its state', async () => {
    await serve.supervisor.stop('httpy');
    const res = await post(initialize());
    expect(res.status).toBe(409);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('PROCESS_NOT_RUNNING');
    expect(body.error.message).toMatch(/"httpy" is stopped/);
    serve.supervisor.start('httpy');
    await eventually(() => (serve.supervisor.get('httpy').state === 'ready' ? true : undefined), 60_000, 50);
  });
});
