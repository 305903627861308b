/**
 * The aggregate MCP endpoint's protocol logic: one SDK `Server` (a transport is connected to it per client session)
 * that offers the tools, prompts and resources of every ready server under public names (aggregate-names.ts).
 *
 *   lists      every server that is `ready`, has a client and declares the capability is asked in parallel, each
 *              bounded by `listTimeoutMs` (an AbortSignal in the SDK request options), by 50 pages and by 1000
 *              entries; a server that fails or does not answer in time is left out and reported through
 *              `onWarning`. The answer is
 *              one page, no cursor, servers in name order. Every entry keeps its fields, gets its public name and
 *              `_meta` naming its origin (`mcp-box/server`, `mcp-box/name`) over any `_meta` it had. Collision
 *              warnings are reported once per Server; failures each time they happen.
 *   resources  a URI listed by one server is kept; listed by several, the first by server name keeps it and each
 *              other one becomes `mcp-box://<server>/<encodeURIComponent(uri)>` (with a warning). A read maps the
 *              URI back through the latest listing (listing again once on a miss); a URI no server lists goes to
 *              the one server whose resource template matches it (RFC 6570 level 1: `{var}` matches `[^/]+`,
 *              anchored) — none or several is InvalidParams.
 *   calls      tools/call, prompts/get and resources/read resolve the public name in the latest listing (listing
 *              again once when unknown; still unknown is InvalidParams, unless the name starts with
 *              `<server>__` of a server that is down: that answers as below). A server that is not ready now answers
 *              `SERVER_UNAVAILABLE` without being called; so does a BoxError, a closed connection or any other
 *              failure to reach it, with `data: { server, code, phase, state }` (`state` null when the server is
 *              gone from the list). A JSON-RPC error the server itself answered keeps its code, with `data.server`.
 *
 * tools/call goes through the supervisor (`backend.callTool`: timeouts, call guard); prompts and resources through
 * the server's SDK client. Every failure is answered as an McpError, never left as an unhandled rejection.
 */
import { setMaxListeners } from 'node:events';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import type { RequestOptions } from '@modelcontextprotocol/sdk/shared/protocol.js';
import {
  CallToolRequestSchema,
  ErrorCode,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ReadResourceRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';
import type {
  CallToolResult,
  Prompt,
  ReadResourceResult,
  Resource,
  ResourceTemplate,
  ServerCapabilities,
  Tool,
} from '@modelcontextprotocol/sdk/types.js';
import { describeError, isBoxError } from '../errors/box-error.js';
import type { ServerStatus } from '../supervisor/types.js';
import { MCP_BOX_VERSION } from '../version.js';
import { compareCodeUnits, namespaceNames, type NameOrigin } from './aggregate-names.js';

/** The JSON-RPC error code of a request whose server is not running or could not be reached. */
export const SERVER_UNAVAILABLE = -32002;
/** How long one server may take to answer a whole list (all its pages). */
export const DEFAULT_LIST_TIMEOUT_MS = 10_000;
/** Cursors followed per server and list kind. */
export const MAX_LIST_PAGES = 50;
/** Entries taken from one server per list kind: a server listing more cannot grow every client's list without end. */
export const MAX_LIST_ITEMS = 1000;
/** The `_meta` keys naming where an entry comes from. */
export const ORIGIN_SERVER_META = 'mcp-box/server';
export const ORIGIN_NAME_META = 'mcp-box/name';
/** The scheme of a resource URI rewritten because several servers list it. */
export const REWRITTEN_URI_SCHEME = 'mcp-box:';

export interface AggregateBackend {
  /** Every server's status, any order. */
  list(): ServerStatus[];
  /** The supervisor's own connected SDK client of a ready server, else undefined. */
  client(name: string): Client | undefined;
  /**
   * tools/call through the supervisor (timeouts, call guard); throws a BoxError when the server is not ready or the
   * call fails.
   */
  callTool(
    name: string,
    tool: string,
    args: Record<string, unknown>,
    opts: { signal?: AbortSignal },
  ): Promise<CallToolResult>;
}

export interface AggregateServerOptions {
  /** A server left out of a list, a collision, a cut-off list: one readable line each. */
  onWarning?: (text: string) => void;
  /** Bound of one server's whole list; default `DEFAULT_LIST_TIMEOUT_MS`. */
  listTimeoutMs?: number;
}

interface Listed<T> {
  server: string;
  items: T[];
}

interface UriOrigin {
  server: string;
  uri: string;
}

interface TemplateEntry {
  server: string;
  pattern: RegExp | null;
}

type Page<T> = (client: Client, cursor: string | undefined, options: RequestOptions) => Promise<[T[], string?]>;

const stripPrefix = (message: string): string => message.replace(/^MCP error -?\d+: /, '');

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const withOrigin = (meta: unknown, server: string, name: string): Record<string, unknown> => ({
  ...(isRecord(meta) ? meta : {}),
  [ORIGIN_SERVER_META]: server,
  [ORIGIN_NAME_META]: name,
});

/**
 * An RFC 6570 level-1 template as an anchored pattern (`{var}` → `[^/]+`, everything else literal); null for a
 * template using anything beyond level 1 (operators, lists, modifiers) or with stray braces: it matches nothing.
 */
export function templatePattern(template: string): RegExp | null {
  let source = '';
  let rest = template;
  while (rest.length > 0) {
    const open = rest.indexOf('{');
    const literal = open === -1 ? rest : rest.slice(0, open);
    if (literal.includes('}')) return null;
    source += literal.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    if (open === -1) break;
    const close = rest.indexOf('}', open);
    if (close === -1) return null;
    if (!/^[A-Za-z0-9_]+$/.test(rest.slice(open + 1, close))) return null;
    source += '[^/]+';
    rest = rest.slice(close + 1);
  }
  return new RegExp(`^${source}$`);
}

/** The URI a server's resource gets when another server (earlier by name) lists the same URI. */
export const rewrittenUri = (server: string, uri: string): string =>
  `${REWRITTEN_URI_SCHEME}//${server}/${encodeURIComponent(uri)}`;

export function createAggregateServer(backend: AggregateBackend, opts: AggregateServerOptions = {}): Server {
  const listTimeoutMs = opts.listTimeoutMs ?? DEFAULT_LIST_TIMEOUT_MS;
  const warned = new Set<string>();

  const warn = (text: string): void => {
    try {
      opts.onWarning?.(text);
    } catch {
      // a failing listener must not break a list
    }
  };
  const warnOnce = (text: string): void => {
    if (warned.has(text)) return;
    warned.add(text);
    warn(text);
  };

  // The latest listing of each kind, by public name (or URI).
  let tools: Map<string, NameOrigin> | null = null;
  let prompts: Map<string, NameOrigin> | null = null;
  let resources: Map<string, UriOrigin> | null = null;
  let templates: TemplateEntry[] | null = null;

  const statuses = (): ServerStatus[] => {
    try {
      return backend.list();
    } catch {
      return [];
    }
  };
  const statusOf = (server: string): ServerStatus | undefined => statuses().find((s) => s.name === server);

  const unavailable = (server: string, code: string, phase: string, detail: string): McpError =>
    new McpError(SERVER_UNAVAILABLE, `Server "${server}" is unavailable (phase ${phase}, code ${code}): ${detail}`, {
      server,
      code,
      phase,
      state: statusOf(server)?.state ?? null,
    });

  /** The answer to a failed request to a server's client (or the supervisor's callTool). */
  const callError = (server: string, error: unknown): McpError => {
    if (isBoxError(error)) return unavailable(server, error.code, error.phase, error.message);
    if (error instanceof McpError) {
      const message = stripPrefix(error.message);
      if (error.code === Number(ErrorCode.ConnectionClosed)) {
        return unavailable(server, 'PROCESS_NOT_RUNNING', 'runtime', message);
      }
      const data = isRecord(error.data) ? error.data : error.data === undefined ? {} : { data: error.data };
      return new McpError(error.code, message, { ...data, server });
    }
    return unavailable(server, 'PROCESS_NOT_RUNNING', 'runtime', describeError(error));
  };

  /** The server's client when it is ready now; else the error to answer. */
  const readyClient = (server: string): Client => {
    const status = statusOf(server);
    if (status === undefined) throw unavailable(server, 'PROCESS_NOT_RUNNING', 'runtime', 'it is no longer configured');
    if (status.state !== 'ready') {
      const code = status.error?.code ?? 'PROCESS_NOT_RUNNING';
      const phase = status.phase ?? status.error?.phase ?? 'runtime';
      const why = status.error === undefined ? '' : `: ${status.error.message}`;
      throw unavailable(server, code, phase, `it is ${status.state}${why}`);
    }
    const client = backend.client(server);
    if (client === undefined) throw unavailable(server, 'PROCESS_NOT_RUNNING', 'runtime', 'it has no client');
    return client;
  };

  /** One list kind of every ready server that has the capability, in server-name order; failures left out. */
  async function collect<T>(
    method: string,
    capability: keyof ServerCapabilities,
    parent: AbortSignal,
    page: Page<T>,
  ): Promise<Listed<T>[]> {
    let statuses: ServerStatus[];
    try {
      statuses = backend.list();
    } catch (error) {
      warn(`${method}: the server list failed: ${describeError(error)}`);
      return [];
    }
    const targets: { server: string; client: Client }[] = [];
    for (const s of [...statuses].sort((a, b) => compareCodeUnits(a.name, b.name))) {
      if (s.state !== 'ready') continue;
      const client = backend.client(s.name);
      if (client === undefined || client.getServerCapabilities()?.[capability] === undefined) continue;
      targets.push({ server: s.name, client });
    }

    const one = async ({ server, client }: { server: string; client: Client }): Promise<Listed<T> | null> => {
      const controller = new AbortController();
      // The SDK adds one abort listener per page request.
      setMaxListeners(MAX_LIST_PAGES + 10, controller.signal);
      const timer = setTimeout(
        () => controller.abort(new Error(`no answer within ${listTimeoutMs} ms`)),
        listTimeoutMs,
      );
      const onParent = (): void => controller.abort(parent.reason);
      if (parent.aborted) onParent();
      else parent.addEventListener('abort', onParent, { once: true });
      // Settles a page that a client does not end itself on abort.
      let onAbort: () => void = () => {};
      const aborted = new Promise<never>((_, reject) => {
        onAbort = () => reject(controller.signal.reason);
        controller.signal.addEventListener('abort', onAbort, { once: true });
      });
      aborted.catch(() => {});
      try {
        controller.signal.throwIfAborted();
        const items: T[] = [];
        let cursor: string | undefined;
        for (let pages = 1; ; pages++) {
          const [got, next] = await Promise.race([page(client, cursor, { signal: controller.signal }), aborted]);
          items.push(...got);
          if (items.length > MAX_LIST_ITEMS) {
            const kept = MAX_LIST_ITEMS;
            warn(`server "${server}": ${method} listed more than ${kept} entries; the first ${kept} are kept`);
            items.length = MAX_LIST_ITEMS;
            break;
          }
          if (next === undefined) break;
          if (pages >= MAX_LIST_PAGES) {
            warn(`server "${server}": ${method} stopped after ${MAX_LIST_PAGES} pages; the rest is left out`);
            break;
          }
          cursor = next;
        }
        return { server, items };
      } catch (error) {
        if (!parent.aborted) warn(`server "${server}" left out of ${method}: ${describeError(error)}`);
        return null;
      } finally {
        clearTimeout(timer);
        parent.removeEventListener('abort', onParent);
        controller.signal.removeEventListener('abort', onAbort);
      }
    };

    const results = await Promise.all(targets.map(one));
    return results.filter((r): r is Listed<T> => r !== null);
  }

  /** Public names for one kind's entries; collision warnings once. */
  const naming = <T extends { name: string }>(listed: Listed<T>[]) => {
    const named = namespaceNames(listed.flatMap((l) => l.items.map((item) => ({ server: l.server, name: item.name }))));
    for (const w of named.warnings) warnOnce(w);
    return named;
  };

  /** Tools or prompts: each entry under its public name with its origin; the same name twice in one list once. */
  function publish<T extends { name: string; _meta?: unknown }>(listed: Listed<T>[]): [T[], Map<string, NameOrigin>] {
    const named = naming(listed);
    const byName = new Map<string, NameOrigin>();
    const out: T[] = [];
    for (const { server, items } of listed) {
      for (const item of items) {
        const name = named.publicName(server, item.name) as string;
        if (byName.has(name)) continue;
        byName.set(name, { server, name: item.name });
        out.push({ ...item, name, _meta: withOrigin(item._meta, server, item.name) });
      }
    }
    return [out, byName];
  }

  async function listTools(signal: AbortSignal): Promise<Tool[]> {
    const listed = await collect<Tool>('tools/list', 'tools', signal, async (client, cursor, options) => {
      const r = await client.listTools(cursor === undefined ? undefined : { cursor }, options);
      return [r.tools, r.nextCursor];
    });
    const [out, byName] = publish(listed);
    tools = byName;
    return out;
  }

  async function listPrompts(signal: AbortSignal): Promise<Prompt[]> {
    const listed = await collect<Prompt>('prompts/list', 'prompts', signal, async (client, cursor, options) => {
      const r = await client.listPrompts(cursor === undefined ? undefined : { cursor }, options);
      return [r.prompts, r.nextCursor];
    });
    const [out, byName] = publish(listed);
    prompts = byName;
    return out;
  }

  async function listResources(signal: AbortSignal): Promise<Resource[]> {
    const listed = await collect<Resource>('resources/list', 'resources', signal, async (client, cursor, options) => {
      const r = await client.listResources(cursor === undefined ? undefined : { cursor }, options);
      return [r.resources, r.nextCursor];
    });
    const named = naming(listed);
    // The first server by name that lists a URI keeps it.
    const keeper = new Map<string, string>();
    for (const { server, items } of listed) for (const r of items) if (!keeper.has(r.uri)) keeper.set(r.uri, server);
    const byUri = new Map<string, UriOrigin>();
    const out: Resource[] = [];
    for (const { server, items } of listed) {
      for (const resource of items) {
        const owner = keeper.get(resource.uri) as string;
        let uri = resource.uri;
        if (owner !== server) {
          uri = rewrittenUri(server, resource.uri);
          warnOnce(
            `resource URI collision on ${JSON.stringify(resource.uri)}: server "${owner}" keeps it, ` +
              `server "${server}" offers it as ${JSON.stringify(uri)}`,
          );
        }
        if (!byUri.has(uri)) byUri.set(uri, { server, uri: resource.uri });
        const name = named.publicName(server, resource.name) as string;
        out.push({ ...resource, uri, name, _meta: withOrigin(resource._meta, server, resource.name) });
      }
    }
    resources = byUri;
    return out;
  }

  async function listTemplates(signal: AbortSignal): Promise<ResourceTemplate[]> {
    const listed = await collect<ResourceTemplate>(
      'resources/templates/list',
      'resources',
      signal,
      async (client, cursor, options) => {
        const r = await client.listResourceTemplates(cursor === undefined ? undefined : { cursor }, options);
        return [r.resourceTemplates, r.nextCursor];
      },
    );
    const named = naming(listed);
    const entries: TemplateEntry[] = [];
    const out: ResourceTemplate[] = [];
    for (const { server, items } of listed) {
      for (const template of items) {
        entries.push({ server, pattern: templatePattern(template.uriTemplate) });
        const name = named.publicName(server, template.name) as string;
        out.push({ ...template, name, _meta: withOrigin(template._meta, server, template.name) });
      }
    }
    templates = entries;
    return out;
  }

  const templateServers = (uri: string): string[] => [
    ...new Set((templates ?? []).filter((t) => t.pattern?.test(uri) === true).map((t) => t.server)),
  ];

  /** Where a URI read goes: the latest listing, a fresh one, then the templates. */
  async function resolveUri(uri: string, signal: AbortSignal): Promise<UriOrigin> {
    let found = resources?.get(uri);
    if (found === undefined) {
      await listResources(signal);
      found = resources?.get(uri);
    }
    if (found !== undefined) return found;
    let servers = templates === null ? [] : templateServers(uri);
    if (servers.length === 0) {
      await listTemplates(signal);
      servers = templateServers(uri);
    }
    if (servers.length === 1) return { server: servers[0] as string, uri };
    if (servers.length === 0) {
      throw new McpError(
        ErrorCode.InvalidParams,
        `Unknown resource ${JSON.stringify(uri)}: no server lists it and no resource template matches it`,
      );
    }
    throw new McpError(
      ErrorCode.InvalidParams,
      `Resource ${JSON.stringify(uri)} matches resource templates of several servers (${servers.join(', ')}); ` +
        'it cannot be routed',
    );
  }

  const resolveName = async (
    kind: string,
    name: string,
    latest: () => Map<string, NameOrigin> | null,
    relist: () => Promise<unknown>,
  ): Promise<NameOrigin> => {
    let found = latest()?.get(name);
    if (found === undefined) {
      await relist();
      found = latest()?.get(name);
    }
    if (found === undefined) {
      // Not listed because its server is down (stopped, restarting, failed): say that, with its phase and code,
      // rather than that the name is unknown. The longest server name that prefixes it is the one meant.
      const owner = statuses()
        .filter((s) => s.state !== 'ready' && name.startsWith(`${s.name}__`))
        .sort((a, b) => b.name.length - a.name.length)[0];
      if (owner !== undefined) readyClient(owner.name);
      throw new McpError(ErrorCode.InvalidParams, `Unknown ${kind} ${JSON.stringify(name)}`);
    }
    return found;
  };

  const server = new Server(
    { name: 'mcp-box', version: MCP_BOX_VERSION },
    {
      capabilities: {
        tools: { listChanged: true },
        prompts: { listChanged: true },
        resources: { listChanged: true },
      },
    },
  );

  server.setRequestHandler(ListToolsRequestSchema, async (_request, extra) => ({
    tools: await listTools(extra.signal),
  }));

  server.setRequestHandler(CallToolRequestSchema, async (request, extra): Promise<CallToolResult> => {
    const target = await resolveName(
      'tool',
      request.params.name,
      () => tools,
      () => listTools(extra.signal),
    );
    readyClient(target.server);
    try {
      return await backend.callTool(target.server, target.name, request.params.arguments ?? {}, {
        signal: extra.signal,
      });
    } catch (error) {
      throw callError(target.server, error);
    }
  });

  server.setRequestHandler(ListPromptsRequestSchema, async (_request, extra) => ({
    prompts: await listPrompts(extra.signal),
  }));

  server.setRequestHandler(GetPromptRequestSchema, async (request, extra) => {
    const target = await resolveName(
      'prompt',
      request.params.name,
      () => prompts,
      () => listPrompts(extra.signal),
    );
    const client = readyClient(target.server);
    const args = request.params.arguments;
    try {
      return await client.getPrompt(
        args === undefined ? { name: target.name } : { name: target.name, arguments: args },
        { signal: extra.signal },
      );
    } catch (error) {
      throw callError(target.server, error);
    }
  });

  server.setRequestHandler(ListResourcesRequestSchema, async (_request, extra) => ({
    resources: await listResources(extra.signal),
  }));

  server.setRequestHandler(ListResourceTemplatesRequestSchema, async (_request, extra) => ({
    resourceTemplates: await listTemplates(extra.signal),
  }));

  server.setRequestHandler(ReadResourceRequestSchema, async (request, extra): Promise<ReadResourceResult> => {
    const publicUri = request.params.uri;
    const target = await resolveUri(publicUri, extra.signal);
    const client = readyClient(target.server);
    let result: ReadResourceResult;
    try {
      result = await client.readResource({ uri: target.uri }, { signal: extra.signal });
    } catch (error) {
      throw callError(target.server, error);
    }
    if (publicUri === target.uri) return result;
    // A rewritten URI: the contents name it as the client knows it.
    return {
      ...result,
      contents: result.contents.map((c) => (c.uri === target.uri ? { ...c, uri: publicUri } : c)),
    };
  });

  return server;
}
