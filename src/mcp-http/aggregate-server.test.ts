import { createHash } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import {
  ErrorCode,
  ListToolsRequestSchema,
  McpError,
  type CallToolResult,
  type ListToolsResult,
} from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { BoxError, type ServerPhase } from '../errors/box-error.js';
import type { FailureRecord, ServerState, ServerStatus } from '../supervisor/types.js';
import { MCP_BOX_VERSION } from '../version.js';
import {
  createAggregateServer,
  MAX_LIST_ITEMS,
  MAX_LIST_PAGES,
  SERVER_UNAVAILABLE,
  templatePattern,
  type AggregateBackend,
} from './aggregate-server.js';

const LONG = `tool_${'l'.repeat(70)}`;
const hex8 = (server: string, name: string): string =>
  createHash('sha256').update(`${server}\0${name}`).digest('hex').slice(0, 8);
const text = (value: string) => ({ content: [{ type: 'text' as const, text: value }] });

interface Fake {
  name: string;
  state: ServerState;
  client?: Client;
  phase?: ServerPhase;
  error?: FailureRecord;
  /** callTool throws a BoxError although the status says ready. */
  callFails?: boolean;
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close().catch(() => {});
});

async function link(server: McpServer | Server, name: string): Promise<Client> {
  const [serverSide, clientSide] = InMemoryTransport.createLinkedPair();
  const client = new Client({ name: `supervisor-of-${name}`, version: '1' });
  await Promise.all([server.connect(serverSide), client.connect(clientSide)]);
  closers.push(
    () => client.close(),
    () => server.close(),
  );
  return client;
}

function alphaServer(): McpServer {
  const s = new McpServer({ name: 'alpha', version: '1' });
  s.registerTool(
    'echo',
    {
      description: 'alpha echo',
      inputSchema: { text: z.string() },
      annotations: { readOnlyHint: true },
      _meta: { custom: 'kept', 'mcp-box/server': 'spoofed' },
    },
    async ({ text: t }) => text(`alpha: ${t}`),
  );
  s.registerTool(LONG, { description: 'long' }, async () => text('long alpha'));
  s.registerPrompt('greet', { argsSchema: { who: z.string() } }, ({ who }) => ({
    messages: [{ role: 'user', content: { type: 'text', text: `alpha greets ${who}` } }],
  }));
  s.registerResource('shared', 'file:///shared.txt', { mimeType: 'text/plain' }, async (uri) => ({
    contents: [{ uri: uri.href, text: 'alpha shared' }],
  }));
  s.registerResource('item', new ResourceTemplate('alpha://items/{id}', { list: undefined }), {}, async (uri, v) => ({
    contents: [{ uri: uri.href, text: `alpha item ${String(v.id)}` }],
  }));
  s.registerResource('both', new ResourceTemplate('both://{x}', { list: undefined }), {}, async (uri) => ({
    contents: [{ uri: uri.href, text: 'alpha both' }],
  }));
  return s;
}

function betaServer(): McpServer {
  const s = new McpServer({ name: 'beta', version: '1' });
  s.registerTool('echo', { inputSchema: { text: z.string() } }, async ({ text: t }) => text(`beta: ${t}`));
  s.registerTool('stats', { outputSchema: { count: z.number() } }, async () => ({
    ...text('3'),
    structuredContent: { count: 3 },
  }));
  s.registerPrompt('greet', { argsSchema: { who: z.string() } }, ({ who }) => ({
    messages: [{ role: 'user', content: { type: 'text', text: `beta greets ${who}` } }],
  }));
  // The server goes away while answering.
  s.registerPrompt('vanish', {}, () => {
    setTimeout(() => void s.close(), 0);
    return new Promise(() => {});
  });
  s.registerResource('shared', 'file:///shared.txt', {}, async (uri) => ({
    contents: [{ uri: uri.href, text: 'beta shared' }],
  }));
  s.registerResource('only', 'beta://only', {}, async (uri) => ({ contents: [{ uri: uri.href, text: 'beta only' }] }));
  s.registerResource('both', new ResourceTemplate('both://{x}', { list: undefined }), {}, async (uri) => ({
    contents: [{ uri: uri.href, text: 'beta both' }],
  }));
  return s;
}

function toolOnly(name: string, tool = 't'): McpServer {
  const s = new McpServer({ name, version: '1' });
  s.registerTool(tool, {}, async () => text(`from ${name}`));
  return s;
}

const failure = (phase: ServerPhase, code: FailureRecord['code']): FailureRecord => ({
  phase,
  code,
  message: 'exited with status 1',
  retryable: false,
  stderrTail: '',
  durationMs: 5,
  attempt: 1,
  maxAttempts: 1,
  at: new Date(0).toISOString(),
});

function fakeBackend(fakes: Fake[]) {
  const calls: { server: string; tool: string; args: Record<string, unknown> }[] = [];
  const find = (name: string) => fakes.find((f) => f.name === name);
  const backend: AggregateBackend = {
    list: (): ServerStatus[] =>
      fakes.map((f) => ({
        name: f.name,
        state: f.state,
        ...(f.phase === undefined ? {} : { phase: f.phase }),
        ...(f.error === undefined ? {} : { error: f.error }),
        relay: null,
        clientMode: 'supervisor',
        restarts: 0,
      })),
    client: (name) => {
      const f = find(name);
      return f?.state === 'ready' ? f.client : undefined;
    },
    callTool: async (name, tool, args, opts) => {
      calls.push({ server: name, tool, args });
      const f = find(name);
      if (f?.client === undefined || f.state !== 'ready' || f.callFails === true) {
        throw new BoxError('PROCESS_NOT_RUNNING', 'runtime', `server "${name}" is not running`);
      }
      return (await f.client.callTool({ name: tool, arguments: args }, undefined, opts)) as CallToolResult;
    },
  };
  return { backend, calls, find };
}

async function connectAggregate(backend: AggregateBackend, listTimeoutMs?: number) {
  const warnings: string[] = [];
  const aggregate = createAggregateServer(backend, {
    onWarning: (w) => warnings.push(w),
    ...(listTimeoutMs === undefined ? {} : { listTimeoutMs }),
  });
  const client = await link(aggregate, 'aggregate');
  return { client, warnings };
}

async function setup(extra: Fake[] = []) {
  const fakes: Fake[] = [
    { name: 'alpha', state: 'ready', client: await link(alphaServer(), 'alpha') },
    { name: 'beta', state: 'ready', client: await link(betaServer(), 'beta') },
    { name: 'x.y', state: 'ready', client: await link(toolOnly('x.y'), 'x.y') },
    { name: 'x_y', state: 'ready', client: await link(toolOnly('x_y'), 'x_y') },
    { name: 'down', state: 'failed', phase: 'process_start', error: failure('process_start', 'PROCESS_EXITED') },
    ...extra,
  ];
  const fake = fakeBackend(fakes);
  return { ...fake, ...(await connectAggregate(fake.backend)) };
}

async function rejection(promise: Promise<unknown>): Promise<McpError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(McpError);
    return error as McpError;
  }
  throw new Error('expected the request to fail');
}

const firstText = (result: unknown): string | undefined =>
  (result as { content?: { type: string; text?: string }[] }).content?.[0]?.text;

describe('createAggregateServer: tools', () => {
  it('introduces itself as mcp-box with list_changed capabilities and no subscribe', async () => {
    const { client } = await setup();
    expect(client.getServerVersion()).toEqual({ name: 'mcp-box', version: MCP_BOX_VERSION });
    expect(client.getServerCapabilities()).toMatchObject({
      tools: { listChanged: true },
      prompts: { listChanged: true },
      resources: { listChanged: true },
    });
    expect(client.getServerCapabilities()?.resources?.subscribe).toBeUndefined();
  });

  it('lists every ready server’s tools under public names with their origin in _meta', async () => {
    const { client, warnings } = await setup();
    const { tools, nextCursor } = await client.listTools();
    expect(nextCursor).toBeUndefined();
    const longName = `${`alpha__${LONG}`.slice(0, 55)}-${hex8('alpha', LONG)}`;
    const hashedXy = `x_y__t-${hex8('x_y', 't')}`;
    expect(tools.map((t) => t.name).sort()).toEqual(
      ['alpha__echo', longName, 'beta__echo', 'beta__stats', 'x_y__t', hashedXy].sort(),
    );
    for (const t of tools) expect(t.name).toMatch(/^[A-Za-z0-9_-]{1,64}$/);

    const echo = tools.find((t) => t.name === 'alpha__echo');
    expect(echo?.description).toBe('alpha echo');
    expect(echo?.annotations).toEqual({ readOnlyHint: true });
    expect(echo?.inputSchema.properties).toHaveProperty('text');
    expect(echo?._meta).toEqual({ custom: 'kept', 'mcp-box/server': 'alpha', 'mcp-box/name': 'echo' });
    expect(tools.find((t) => t.name === longName)?._meta).toMatchObject({ 'mcp-box/name': LONG });
    expect(tools.find((t) => t.name === 'beta__stats')?.outputSchema?.properties).toHaveProperty('count');
    // '.' sorts before '_': x.y keeps the plain name
    expect(tools.find((t) => t.name === 'x_y__t')?._meta).toMatchObject({ 'mcp-box/server': 'x.y' });
    expect(tools.find((t) => t.name === hashedXy)?._meta).toMatchObject({ 'mcp-box/server': 'x_y' });

    await client.listTools();
    const collisions = warnings.filter((w) => w.includes('collision'));
    expect(collisions).toEqual([
      `name collision on "x_y__t": server "x.y" name "t" keeps "x_y__t", server "x_y" name "t" is named "${hashedXy}"`,
    ]);
  });

  it('routes each call to the server that owns the tool, with its original name', async () => {
    const { client, calls } = await setup();
    await client.listTools();
    expect(firstText(await client.callTool({ name: 'alpha__echo', arguments: { text: 'hi' } }))).toBe('alpha: hi');
    expect(firstText(await client.callTool({ name: 'beta__echo', arguments: { text: 'hi' } }))).toBe('beta: hi');
    const longName = `${`alpha__${LONG}`.slice(0, 55)}-${hex8('alpha', LONG)}`;
    expect(firstText(await client.callTool({ name: longName }))).toBe('long alpha');
    expect(firstText(await client.callTool({ name: `x_y__t-${hex8('x_y', 't')}` }))).toBe('from x_y');
    expect(firstText(await client.callTool({ name: 'x_y__t' }))).toBe('from x.y');
    const stats = await client.callTool({ name: 'beta__stats' });
    expect(stats.structuredContent).toEqual({ count: 3 });
    expect(calls.map((c) => `${c.server}/${c.tool}`)).toEqual([
      'alpha/echo',
      'beta/echo',
      `alpha/${LONG}`,
      'x_y/t',
      'x.y/t',
      'beta/stats',
    ]);
    expect(calls[0]?.args).toEqual({ text: 'hi' });
  });

  it('resolves a tool not listed yet by listing once, and answers InvalidParams for an unknown one', async () => {
    const late = await link(toolOnly('late'), 'late');
    const { client, find } = await setup([{ name: 'late', state: 'starting', client: late }]);
    expect((await client.listTools()).tools.some((t) => t.name.startsWith('late__'))).toBe(false);
    (find('late') as Fake).state = 'ready';
    expect(firstText(await client.callTool({ name: 'late__t' }))).toBe('from late');

    const error = await rejection(client.callTool({ name: 'nope__t' }));
    expect(error.code).toBe(ErrorCode.InvalidParams);
    expect(error.message).toContain('Unknown tool "nope__t"');
  });

  it('answers SERVER_UNAVAILABLE with the failure’s phase and code, uncalled, for a server now down', async () => {
    const { client, calls, find } = await setup();
    await client.listTools();
    Object.assign(find('alpha') as Fake, {
      state: 'failed',
      phase: 'process_start',
      error: failure('process_start', 'PROCESS_EXITED'),
    });
    const error = await rejection(client.callTool({ name: 'alpha__echo', arguments: { text: 'x' } }));
    expect(SERVER_UNAVAILABLE).toBe(-32002);
    expect(error.code).toBe(SERVER_UNAVAILABLE);
    expect(error.data).toEqual({ server: 'alpha', code: 'PROCESS_EXITED', phase: 'process_start', state: 'failed' });
    expect(error.message).toContain('alpha');
    expect(error.message).toContain('process_start');
    expect(error.message).toContain('PROCESS_EXITED');
    expect(calls).toEqual([]);
  });

  it('answers SERVER_UNAVAILABLE, not an unknown name, for a tool of a server down since it was listed', async () => {
    const { client, calls, find } = await setup();
    Object.assign(find('alpha') as Fake, { state: 'stopped', phase: undefined, error: undefined });
    // The listing the call triggers no longer has alpha's tools: the name's prefix still names alpha.
    expect((await client.listTools()).tools.some((t) => t.name.startsWith('alpha__'))).toBe(false);
    const error = await rejection(client.callTool({ name: 'alpha__echo', arguments: { text: 'x' } }));
    expect(error.code).toBe(SERVER_UNAVAILABLE);
    expect(error.data).toEqual({ server: 'alpha', code: 'PROCESS_NOT_RUNNING', phase: 'runtime', state: 'stopped' });
    expect(calls).toEqual([]);
  });

  it('of two servers down whose names both prefix a tool name, names the longer', async () => {
    const { client } = await setup([
      { name: 'g', state: 'stopped' },
      { name: 'g__h', state: 'failed', phase: 'dep_install', error: failure('dep_install', 'INSTALL_FAILED') },
    ]);
    const error = await rejection(client.callTool({ name: 'g__h__t' }));
    expect(error.data).toMatchObject({ server: 'g__h', code: 'INSTALL_FAILED', phase: 'dep_install' });
    expect((await rejection(client.callTool({ name: 'g__t' }))).data).toMatchObject({ server: 'g', state: 'stopped' });
  });

  it('maps a BoxError of the supervisor’s call to SERVER_UNAVAILABLE with its code and phase', async () => {
    const { client, calls, find } = await setup();
    await client.listTools();
    (find('beta') as Fake).callFails = true;
    const error = await rejection(client.callTool({ name: 'beta__echo', arguments: { text: 'x' } }));
    expect(error.code).toBe(SERVER_UNAVAILABLE);
    expect(error.data).toEqual({ server: 'beta', code: 'PROCESS_NOT_RUNNING', phase: 'runtime', state: 'ready' });
    expect(calls).toHaveLength(1);
  });

  it('leaves out a server that does not answer tools/list within listTimeoutMs, with a warning', async () => {
    const slow = new Server({ name: 'slow', version: '1' }, { capabilities: { tools: {} } });
    slow.setRequestHandler(ListToolsRequestSchema, () => new Promise<ListToolsResult>(() => {}));
    const fast = await link(toolOnly('fast'), 'fast');
    const { backend } = fakeBackend([
      { name: 'slow', state: 'ready', client: await link(slow, 'slow') },
      { name: 'fast', state: 'ready', client: fast },
    ]);
    const { client, warnings } = await connectAggregate(backend, 100);
    const started = Date.now();
    const { tools } = await client.listTools();
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(tools.map((t) => t.name)).toEqual(['fast__t']);
    expect(warnings).toEqual(['server "slow" left out of tools/list: no answer within 100 ms']);
  });

  it('follows cursors, and stops after MAX_LIST_PAGES pages with a warning', async () => {
    const paged = (endless: boolean) => {
      const s = new Server({ name: 'paged', version: '1' }, { capabilities: { tools: {} } });
      let served = 0;
      s.setRequestHandler(ListToolsRequestSchema, (request) => {
        served++;
        const n = Number(request.params?.cursor ?? 0);
        return {
          tools: [{ name: `t${n}`, inputSchema: { type: 'object' as const } }],
          ...(endless || n < 2 ? { nextCursor: String(n + 1) } : {}),
        };
      });
      return { s, served: () => served };
    };
    const three = paged(false);
    const endless = paged(true);
    const { backend } = fakeBackend([
      { name: 'three', state: 'ready', client: await link(three.s, 'three') },
      { name: 'endless', state: 'ready', client: await link(endless.s, 'endless') },
    ]);
    const { client, warnings } = await connectAggregate(backend);
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names.filter((n) => n.startsWith('three__'))).toEqual(['three__t0', 'three__t1', 'three__t2']);
    expect(names.filter((n) => n.startsWith('endless__'))).toHaveLength(MAX_LIST_PAGES);
    expect(endless.served()).toBe(MAX_LIST_PAGES);
    expect(warnings).toEqual([
      `server "endless": tools/list stopped after ${MAX_LIST_PAGES} pages; the rest is left out`,
    ]);
  });

  it('keeps the first MAX_LIST_ITEMS entries of a server that lists more, with a warning', async () => {
    const huge = new Server({ name: 'huge', version: '1' }, { capabilities: { tools: {} } });
    huge.setRequestHandler(ListToolsRequestSchema, () => ({
      tools: Array.from({ length: MAX_LIST_ITEMS + 500 }, (_, i) => ({
        name: `t${i}`,
        inputSchema: { type: 'object' as const },
      })),
    }));
    const { backend } = fakeBackend([
      { name: 'huge', state: 'ready', client: await link(huge, 'huge') },
      { name: 'beta', state: 'ready', client: await link(betaServer(), 'beta') },
    ]);
    const { client, warnings } = await connectAggregate(backend);
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names.filter((n) => n.startsWith('huge__'))).toHaveLength(MAX_LIST_ITEMS);
    expect(names).toContain(`huge__t${MAX_LIST_ITEMS - 1}`);
    expect(names.some((n) => n.startsWith('beta__'))).toBe(true);
    expect(warnings).toEqual([
      `server "huge": tools/list listed more than ${MAX_LIST_ITEMS} entries; the first ${MAX_LIST_ITEMS} are kept`,
    ]);
  });
});

describe('createAggregateServer: prompts', () => {
  it('lists prompts namespaced (servers without prompts left out silently) and routes prompts/get', async () => {
    const { client, warnings } = await setup();
    const { prompts } = await client.listPrompts();
    expect(prompts.map((p) => p.name).sort()).toEqual(['alpha__greet', 'beta__greet', 'beta__vanish']);
    expect(prompts.find((p) => p.name === 'beta__greet')?._meta).toEqual({
      'mcp-box/server': 'beta',
      'mcp-box/name': 'greet',
    });
    expect(prompts.find((p) => p.name === 'alpha__greet')?.arguments?.map((a) => a.name)).toEqual(['who']);
    expect(warnings).toEqual([]);

    const got = await client.getPrompt({ name: 'beta__greet', arguments: { who: 'ann' } });
    expect(got.messages[0]?.content).toEqual({ type: 'text', text: 'beta greets ann' });

    const unknown = await rejection(client.getPrompt({ name: 'alpha__nope' }));
    expect(unknown.code).toBe(ErrorCode.InvalidParams);
    expect(unknown.message).toContain('Unknown prompt');
  });

  it('keeps prompt and tool names apart: a tool name is not a prompt', async () => {
    const { client } = await setup();
    const error = await rejection(client.getPrompt({ name: 'alpha__echo' }));
    expect(error.code).toBe(ErrorCode.InvalidParams);
  });

  it('answers SERVER_UNAVAILABLE when the server goes away in the middle of prompts/get', async () => {
    const { client } = await setup();
    await client.listPrompts();
    const error = await rejection(client.getPrompt({ name: 'beta__vanish' }));
    expect(error.code).toBe(SERVER_UNAVAILABLE);
    expect(error.data).toMatchObject({ server: 'beta', code: 'PROCESS_NOT_RUNNING', state: 'ready' });
    // and again, now that the client is closed: the same answer, no unhandled rejection
    const again = await rejection(client.getPrompt({ name: 'beta__greet', arguments: { who: 'x' } }));
    expect(again.code).toBe(SERVER_UNAVAILABLE);
    expect(again.data).toMatchObject({ server: 'beta', code: 'PROCESS_NOT_RUNNING' });
  });
});

describe('createAggregateServer: resources', () => {
  const rewritten = `mcp-box://beta/${encodeURIComponent('file:///shared.txt')}`;

  it('keeps a URI one server lists, rewrites the later one of a shared URI, and reads both back', async () => {
    const { client, warnings } = await setup();
    const { resources } = await client.listResources();
    expect(resources.map((r) => [r.name, r.uri]).sort()).toEqual(
      [
        ['alpha__shared', 'file:///shared.txt'],
        ['beta__shared', rewritten],
        ['beta__only', 'beta://only'],
      ].sort(),
    );
    expect(resources.find((r) => r.name === 'alpha__shared')?._meta).toEqual({
      'mcp-box/server': 'alpha',
      'mcp-box/name': 'shared',
    });
    expect(resources.find((r) => r.name === 'alpha__shared')?.mimeType).toBe('text/plain');
    expect(warnings).toEqual([
      `resource URI collision on "file:///shared.txt": server "alpha" keeps it, server "beta" offers it as ` +
        `"${rewritten}"`,
    ]);

    const alpha = await client.readResource({ uri: 'file:///shared.txt' });
    expect(alpha.contents).toEqual([{ uri: 'file:///shared.txt', text: 'alpha shared' }]);
    const beta = await client.readResource({ uri: rewritten });
    expect(beta.contents).toEqual([{ uri: rewritten, text: 'beta shared' }]);

    await client.listResources();
    expect(warnings).toHaveLength(1);
  });

  it('reads a URI without a prior listing by listing once', async () => {
    const { client } = await setup();
    const got = await client.readResource({ uri: 'beta://only' });
    expect(got.contents[0]).toMatchObject({ text: 'beta only' });
  });

  it('lists templates namespaced and routes a URI no server lists to the one whose template matches', async () => {
    const { client } = await setup();
    const { resourceTemplates } = await client.listResourceTemplates();
    expect(resourceTemplates.map((t) => [t.name, t.uriTemplate]).sort()).toEqual(
      [
        ['alpha__both', 'both://{x}'],
        ['alpha__item', 'alpha://items/{id}'],
        ['beta__both', 'both://{x}'],
      ].sort(),
    );
    expect(resourceTemplates.find((t) => t.name === 'alpha__item')?._meta).toMatchObject({
      'mcp-box/server': 'alpha',
      'mcp-box/name': 'item',
    });

    const item = await client.readResource({ uri: 'alpha://items/7' });
    expect(item.contents).toEqual([{ uri: 'alpha://items/7', text: 'alpha item 7' }]);

    const several = await rejection(client.readResource({ uri: 'both://q' }));
    expect(several.code).toBe(ErrorCode.InvalidParams);
    expect(several.message).toContain('several servers (alpha, beta)');

    const deeper = await rejection(client.readResource({ uri: 'alpha://items/7/more' }));
    expect(deeper.code).toBe(ErrorCode.InvalidParams);
    expect(deeper.message).toContain('no resource template matches');

    const none = await rejection(client.readResource({ uri: 'nowhere://x' }));
    expect(none.code).toBe(ErrorCode.InvalidParams);
    expect(none.message).toContain('"nowhere://x"');
  });

  it('answers SERVER_UNAVAILABLE for a resource of a server that is down now', async () => {
    const { client, find } = await setup();
    await client.listResources();
    Object.assign(find('beta') as Fake, { state: 'backoff', phase: 'mcp_init', error: undefined });
    const error = await rejection(client.readResource({ uri: 'beta://only' }));
    expect(error.code).toBe(SERVER_UNAVAILABLE);
    expect(error.data).toEqual({ server: 'beta', code: 'PROCESS_NOT_RUNNING', phase: 'mcp_init', state: 'backoff' });
  });
});

describe('templatePattern', () => {
  it('matches level-1 variables as one path segment, anchored', () => {
    const p = templatePattern('file:///{dir}/x.{ext}');
    expect(p?.test('file:///a/x.txt')).toBe(true);
    expect(p?.test('file:///a/b/x.txt')).toBe(false);
    expect(p?.test('file:///a/xytxt')).toBe(false);
    expect(p?.test('pre-file:///a/x.txt')).toBe(false);
    expect(templatePattern('plain://uri')?.test('plain://uri')).toBe(true);
  });

  it('matches nothing for templates beyond level 1 or with stray braces', () => {
    expect(templatePattern('a://{+path}')).toBeNull();
    expect(templatePattern('a://x{?q}')).toBeNull();
    expect(templatePattern('a://{x')).toBeNull();
    expect(templatePattern('a://x}')).toBeNull();
  });
});
