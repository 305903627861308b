import { EventEmitter } from 'node:events';
import { PassThrough, Writable } from 'node:stream';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  ErrorCode,
  LoggingMessageNotificationSchema,
  McpError,
  type JSONRPCMessage,
} from '@modelcontextprotocol/sdk/types.js';
import type { WebSocket } from 'ws';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  CLOSE_ALREADY_ATTACHED,
  CLOSE_PROCESS_EXITED,
  CLOSE_STDOUT_CLOSED,
  CLOSE_TAKEN_OVER,
  CLOSE_TOO_BIG,
} from './close-codes.js';
import type { InProcessTransport } from './in-process-peer.js';
import { RELAY_ERROR_CODE, StdioRelay, type RelayOptions, type RelayProcessExit } from './stdio-relay.js';

type Msg = {
  jsonrpc: '2.0';
  id?: number | string;
  method?: string;
  params?: Record<string, unknown>;
  result?: unknown;
};

/**
 * A tiny stdio MCP server on in-memory streams. stdin has a highWaterMark of 1, so every write
 * reports "full" and the relay pauses and resumes its peer on each drain; `hold()` keeps the next
 * write from completing (no drain) until `release()`.
 *
 * Tools: echo (answers its text), notify (a log notification, then an answer), big (an answer of
 * 1000 bytes), hang (never answers; `answerHung()` answers later).
 */
class ScriptedProcess {
  readonly stdout = new PassThrough();
  readonly stdin: Writable;
  /** Every line the relay wrote to stdin, as written (with its newline). */
  readonly lines: string[] = [];
  readonly received: Msg[] = [];
  readonly exited: Promise<RelayProcessExit>;
  stdoutClosed = false;
  private exit: (e: RelayProcessExit) => void = () => undefined;
  private holding = false;
  private waiting: (() => void) | null = null;
  private tail = '';
  private readonly seen = new EventEmitter();
  private hung: Msg[] = [];

  constructor() {
    this.exited = new Promise((resolve) => (this.exit = resolve));
    this.stdin = new Writable({
      highWaterMark: 1,
      write: (chunk: Buffer, _enc, cb) => {
        this.onStdin(chunk.toString('utf8'));
        if (this.holding) this.waiting = cb;
        else cb();
      },
    });
  }

  stdoutState = (): Promise<'open' | 'closed'> => Promise.resolve(this.stdoutClosed ? 'closed' : 'open');

  hold(): void {
    this.holding = true;
  }

  release(): void {
    this.holding = false;
    const cb = this.waiting;
    this.waiting = null;
    cb?.();
  }

  /** Resolves once the server has received a message with this method (and tool name). */
  until(method: string, tool?: string): Promise<Msg> {
    const match = (m: Msg): boolean => m.method === method && (tool === undefined || m.params?.name === tool);
    const already = this.received.find(match);
    if (already !== undefined) return Promise.resolve(already);
    return new Promise((resolve) => {
      const on = (m: Msg): void => {
        if (!match(m)) return;
        this.seen.off('message', on);
        resolve(m);
      };
      this.seen.on('message', on);
    });
  }

  write(message: unknown): void {
    this.stdout.write(`${JSON.stringify(message)}\n`);
  }

  answerHung(): void {
    for (const m of this.hung.splice(0))
      this.write({ jsonrpc: '2.0', id: m.id, result: { content: [{ type: 'text', text: 'late' }] } });
  }

  end(exit: RelayProcessExit): void {
    this.exit(exit);
    this.stdout.end();
  }

  private onStdin(text: string): void {
    this.lines.push(text);
    const parts = (this.tail + text).split('\n');
    this.tail = parts.pop() ?? '';
    for (const line of parts) {
      const m = JSON.parse(line) as Msg;
      this.received.push(m);
      this.handle(m);
      this.seen.emit('message', m);
    }
  }

  private handle(m: Msg): void {
    const answer = (result: unknown): void => this.write({ jsonrpc: '2.0', id: m.id, result });
    if (m.method === 'initialize')
      return answer({
        protocolVersion: m.params?.protocolVersion,
        capabilities: { tools: {}, logging: {} },
        serverInfo: { name: 'scripted', version: '1.0.0' },
      });
    if (m.method !== 'tools/call' || m.id === undefined) return;
    const args = (m.params?.arguments ?? {}) as { text?: string };
    switch (m.params?.name) {
      case 'echo':
        return answer({ content: [{ type: 'text', text: args.text ?? '' }] });
      case 'notify':
        this.write({
          jsonrpc: '2.0',
          method: 'notifications/message',
          params: { level: 'info', data: 'hello from the process' },
        });
        return answer({ content: [{ type: 'text', text: 'notified' }] });
      case 'big':
        return answer({ content: [{ type: 'text', text: 'x'.repeat(1000) }] });
      case 'hang':
        this.hung.push(m);
        return;
    }
  }
}

/** Just enough of a `ws` WebSocket for the relay (as in stdio-relay.test.ts). */
class FakeSocket extends EventEmitter {
  readonly OPEN = 1;
  readyState = 1;
  sent: string[] = [];
  closedWith: { code: number; reason: string } | null = null;
  send(data: Buffer | string, _opts?: unknown, cb?: () => void): void {
    this.sent.push(data.toString());
    cb?.();
  }
  close(code: number, reason: string): void {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }
  ping(): void {}
  pause(): void {}
  resume(): void {}
  terminate(): void {}
  frame(message: unknown): void {
    this.emit('message', Buffer.from(JSON.stringify(message)), false);
  }
}

const relays: StdioRelay[] = [];
const clients: Client[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  for (const r of relays.splice(0)) r.close();
});

function setup(opts: RelayOptions = {}): { proc: ScriptedProcess; relay: StdioRelay; events: string[] } {
  const proc = new ScriptedProcess();
  const events: string[] = [];
  const relay = new StdioRelay(proc, { onEvent: (m) => events.push(m), ...opts });
  relays.push(relay);
  return { proc, relay, events };
}

function newClient(): Client {
  const client = new Client({ name: 'test', version: '0' }, { capabilities: { roots: { listChanged: true } } });
  clients.push(client);
  return client;
}

async function connected(
  relay: StdioRelay,
  takeover = false,
): Promise<{ client: Client; transport: InProcessTransport; closes: () => number }> {
  const client = newClient();
  let closes = 0;
  client.onclose = () => closes++;
  const transport = relay.connectInProcess({ takeover });
  await client.connect(transport);
  return { client, transport, closes: () => closes };
}

/** The rejection of `promise` (which must reject). */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => err,
  );
}

const settled = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const request = (id: number | string) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name: 'hang', arguments: {} },
});

describe('InProcessTransport: an SDK Client on the relay', () => {
  it('initializes, calls a tool and receives a notification; each message is one line on stdin', async () => {
    const { proc, relay, events } = setup();
    const notes: unknown[] = [];
    const { client } = await connected(relay);
    expect(client.getServerVersion()).toEqual({ name: 'scripted', version: '1.0.0' });
    expect(relay.attached).toBe(true);
    expect(relay.attachedLabel).toBe('in-process client');
    const noted = new Promise<void>((resolve) =>
      client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
        notes.push(n.params);
        resolve();
      }),
    );
    const text = 'two\nlines, a \u2028 separator and "quotes"';
    expect(await client.callTool({ name: 'echo', arguments: { text } })).toMatchObject({
      content: [{ type: 'text', text }],
    });
    expect(await client.callTool({ name: 'notify', arguments: {} })).toMatchObject({ content: [{ text: 'notified' }] });
    await noted;
    expect(notes).toEqual([{ level: 'info', data: 'hello from the process' }]);
    expect(proc.received.map((m) => m.method)).toEqual([
      'initialize',
      'notifications/initialized',
      'tools/call',
      'tools/call',
    ]);
    for (const line of proc.lines) {
      expect(line.endsWith('\n')).toBe(true);
      expect(line.indexOf('\n')).toBe(line.length - 1);
    }
    expect(relay.stats).toMatchObject({ messagesIn: 4, messagesOut: 4, rejectedFrames: 0 });
    expect(events).toContain('in-process client attached');
  });

  it('parses each message once per direction and serialises it once', async () => {
    const { relay } = setup();
    const { client } = await connected(relay);
    const marker = 'marker-7f3a';
    const parse = JSON.parse;
    const stringify = JSON.stringify;
    let parsed = 0;
    let serialised = 0;
    vi.spyOn(JSON, 'parse').mockImplementation(
      (text: string, reviver?: (this: unknown, key: string, value: unknown) => unknown) => {
        if (text.includes(marker)) parsed++;
        return parse(text, reviver) as unknown;
      },
    );
    vi.spyOn(JSON, 'stringify').mockImplementation(((
      value: unknown,
      replacer?: (this: unknown, key: string, value: unknown) => unknown,
      space?: string | number,
    ) => {
      const out = stringify(value, replacer, space);
      if (out?.includes(marker) === true) serialised++;
      return out;
    }) as typeof JSON.stringify);
    await client.callTool({ name: 'echo', arguments: { text: marker } });
    vi.restoreAllMocks();
    // Request: serialised by the relay, parsed by the process. Answer: serialised by the process, parsed by the relay.
    expect({ parsed, serialised }).toEqual({ parsed: 2, serialised: 2 });
  });

  it(
    'the process ends with a request in flight: the request rejects with an McpError carrying { phase, code }, the ' +
      'transport closes once with 4000',
    async () => {
      const { proc, relay } = setup();
      const { client, transport, closes } = await connected(relay);
      const call = client.callTool({ name: 'hang', arguments: {} });
      await proc.until('tools/call', 'hang');
      proc.end({ reason: 'exited', exitCode: 3, signal: null });
      const err = await rejection(call);
      expect(err).toBeInstanceOf(McpError);
      expect(err).toMatchObject({ code: RELAY_ERROR_CODE, data: { phase: 'runtime', code: 'PROCESS_EXITED' } });
      expect((err as McpError).message).toMatch(/the process ended \(exit 3\) before answering/);
      await settled();
      expect(transport.closeInfo).toEqual({ code: CLOSE_PROCESS_EXITED, reason: 'the process ended its output' });
      expect(closes()).toBe(1);
      await expect(transport.send({ jsonrpc: '2.0', method: 'notifications/initialized' })).rejects.toMatchObject({
        code: 'PROCESS_NOT_RUNNING',
      });
      await transport.close();
      expect(closes()).toBe(1);
      // Later attaches are refused.
      await expect(relay.connectInProcess().connect()).rejects.toMatchObject({
        code: 'PROCESS_NOT_RUNNING',
        phase: 'relay_connect',
      });
    },
  );

  it('the process closes its stdout with a request in flight: STDOUT_CLOSED, 4002', async () => {
    let told = 0;
    const { proc, relay } = setup({ stdoutProbeAfterMs: 20, onStdoutClosed: () => told++ });
    const { client, transport } = await connected(relay);
    proc.stdoutClosed = true;
    const err = await rejection(client.callTool({ name: 'hang', arguments: {} }));
    expect(err).toMatchObject({ code: RELAY_ERROR_CODE, data: { phase: 'runtime', code: 'STDOUT_CLOSED' } });
    await settled();
    expect(transport.closeInfo?.code).toBe(CLOSE_STDOUT_CLOSED);
    expect(told).toBe(1);
    await expect(relay.connectInProcess().connect()).rejects.toMatchObject({
      code: 'STDOUT_CLOSED',
      details: { closeCode: CLOSE_STDOUT_CLOSED },
    });
  });

  it(
    'a WebSocket client that takes over answers the in-process request in flight ' +
      '(RELAY_DROPPED) and gets what follows',
    async () => {
      const { proc, relay } = setup();
      const { client, transport, closes } = await connected(relay);
      const call = client.callTool({ name: 'hang', arguments: {} });
      await proc.until('tools/call', 'hang');
      const ws = new FakeSocket();
      expect(relay.attach(ws as unknown as WebSocket, { takeover: true })).toEqual({ attached: true });
      expect(await rejection(call)).toMatchObject({
        code: RELAY_ERROR_CODE,
        data: { phase: 'runtime', code: 'RELAY_DROPPED' },
      });
      await settled();
      expect(transport.closeInfo).toEqual({ code: CLOSE_TAKEN_OVER, reason: 'another client took over this process' });
      expect(closes()).toBe(1);
      proc.answerHung();
      expect(ws.sent).toHaveLength(1);
      expect(JSON.parse(ws.sent[0] ?? '')).toMatchObject({ result: { content: [{ text: 'late' }] } });
    },
  );

  it(
    'an in-process client is refused (CONFLICT, 4409) while ' + 'a WebSocket client is attached, unless it takes over',
    async () => {
      const { proc, relay, events } = setup();
      const ws = new FakeSocket();
      relay.attach(ws as unknown as WebSocket);
      ws.frame(request('ws-1'));
      const refused = relay.connectInProcess();
      let refusedCloses = 0;
      refused.onclose = () => refusedCloses++;
      await expect(refused.connect()).rejects.toMatchObject({
        code: 'CONFLICT',
        phase: 'relay_connect',
        details: { closeCode: CLOSE_ALREADY_ATTACHED },
      });
      await settled();
      expect(refused.closeInfo?.code).toBe(CLOSE_ALREADY_ATTACHED);
      expect(refusedCloses).toBe(1);
      expect(ws.closedWith).toBeNull();
      const { client } = await connected(relay, true);
      expect(ws.closedWith?.code).toBe(CLOSE_TAKEN_OVER);
      expect(JSON.parse(ws.sent[0] ?? '')).toMatchObject({ id: 'ws-1', error: { data: { code: 'RELAY_DROPPED' } } });
      expect(await client.callTool({ name: 'echo', arguments: { text: 'mine now' } })).toMatchObject({
        content: [{ text: 'mine now' }],
      });
      expect(proc.received.filter((m) => m.method === 'initialize')).toHaveLength(1);
      expect(events).toEqual(
        expect.arrayContaining([
          'refused a second in-process client (no takeover)',
          'a new in-process client took over the relay',
        ]),
      );
    },
  );

  it(
    'delivers the lines held while nobody was attached, also ' + 'to a transport connected before the client starts it',
    async () => {
      const { proc, relay } = setup();
      proc.write({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'before anyone' } });
      await settled();
      expect(relay.bufferedLines).toBe(1);
      const transport = relay.connectInProcess();
      await transport.connect();
      expect(relay.bufferedLines).toBe(0);
      proc.write({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'after connect' } });
      await settled();
      const client = newClient();
      const notes: unknown[] = [];
      const both = new Promise<void>((resolve) =>
        client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
          notes.push(n.params.data);
          if (notes.length === 2) resolve();
        }),
      );
      await client.connect(transport);
      await both;
      expect(notes).toEqual(['before anyone', 'after connect']);
    },
  );

  it('an over-limit line closes the transport with 1009 (reported), and a new client works after it', async () => {
    const { relay, events } = setup({ maxLineBytes: 512 });
    const { client, transport } = await connected(relay);
    const err = await rejection(client.callTool({ name: 'big', arguments: {} }));
    expect(err).toMatchObject({ code: ErrorCode.ConnectionClosed });
    expect(transport.closeInfo?.code).toBe(CLOSE_TOO_BIG);
    expect(transport.closeInfo?.reason).toMatch(/exceeded 512 bytes/);
    expect(relay.stats.overLimitLines).toBe(1);
    expect(events.some((e) => e.startsWith('a stdout line exceeded 512 bytes'))).toBe(true);
    const next = await connected(relay);
    expect(await next.client.callTool({ name: 'echo', arguments: { text: 'again' } })).toMatchObject({
      content: [{ text: 'again' }],
    });
  });

  it('an onclose handler may reconnect at once: callbacks never run inside the relay', async () => {
    const { relay } = setup({ maxLineBytes: 512 });
    const { client } = await connected(relay);
    let again: Promise<Client> | null = null;
    let attachedThen: boolean | null = null;
    client.onclose = () => {
      // The transport's onclose runs from a microtask after the relay let go.
      attachedThen = relay.attached;
      const next = newClient();
      again = next.connect(relay.connectInProcess()).then(() => next);
    };
    await rejection(client.callTool({ name: 'big', arguments: {} }));
    await settled();
    expect(attachedThen).toBe(false);
    expect(again).not.toBeNull();
    const next = await (again as unknown as Promise<Client>);
    expect(relay.attachedLabel).toBe('in-process client');
    expect(await next.callTool({ name: 'echo', arguments: { text: 'reconnected' } })).toMatchObject({
      content: [{ text: 'reconnected' }],
    });
  });

  it(
    'backpressure: while stdin is full, messages are held ' +
      'in order and their sends wait; they go on once it drains',
    async () => {
      const { proc, relay } = setup();
      const { client } = await connected(relay);
      const before = proc.lines.length;
      proc.hold();
      const state: Record<string, boolean> = {};
      const track = (name: string, p: Promise<unknown>): Promise<unknown> => p.then(() => (state[name] = true));
      await track('a', client.sendRootsListChanged()); // written; stdin is full now
      expect(state).toEqual({ a: true });
      const b = track('b', client.sendRootsListChanged());
      const c = track('c', client.notification({ method: 'notifications/cancelled', params: { requestId: 'none' } }));
      const call = client.callTool({ name: 'echo', arguments: { text: 'after the drain' } });
      await settled();
      await settled();
      expect(state).toEqual({ a: true });
      expect(proc.lines.length - before).toBe(1);
      proc.release();
      await Promise.all([b, c]);
      expect(await call).toMatchObject({ content: [{ text: 'after the drain' }] });
      expect(proc.received.slice(-4).map((m) => m.method)).toEqual([
        'notifications/roots/list_changed',
        'notifications/roots/list_changed',
        'notifications/cancelled',
        'tools/call',
      ]);
    },
  );

  it('a request still held by backpressure when the process ends gets the same { phase, code } answer', async () => {
    const { proc, relay } = setup();
    const { client } = await connected(relay);
    proc.hold();
    await client.sendRootsListChanged();
    const held = client.callTool({ name: 'echo', arguments: { text: 'never written' } });
    const notification = client.sendRootsListChanged();
    await settled();
    proc.end({ reason: 'oom', exitCode: 137, signal: 'SIGKILL' });
    expect(await rejection(held)).toMatchObject({
      code: RELAY_ERROR_CODE,
      data: { phase: 'runtime', code: 'OOM_KILLED' },
    });
    await expect(notification).rejects.toMatchObject({ code: 'RELAY_DROPPED' });
    expect(proc.received.some((m) => m.params?.name === 'echo')).toBe(false);
  });

  it('close() is idempotent: onclose once, closeInfo 1000, the relay is free for the next client', async () => {
    const { relay, events } = setup();
    const transport = relay.connectInProcess();
    let closes = 0;
    transport.onclose = () => closes++;
    await transport.start();
    expect(relay.attached).toBe(true);
    await transport.close();
    await transport.close();
    expect(closes).toBe(1);
    expect(transport.closeInfo).toEqual({ code: 1000, reason: 'client closed' });
    expect(relay.attached).toBe(false);
    expect(events).toContain('in-process client detached');
    await expect(transport.send({ jsonrpc: '2.0', method: 'notifications/initialized' })).rejects.toMatchObject({
      code: 'PROCESS_NOT_RUNNING',
    });
    const { client } = await connected(relay);
    expect(client.getServerVersion()?.name).toBe('scripted');
  });

  it(
    'checks the shape of what it sends (counted as rejected); a value from the process ' +
      'that is not JSON-RPC goes to onerror',
    async () => {
      const { proc, relay } = setup();
      const transport = relay.connectInProcess();
      const errors: string[] = [];
      const got: JSONRPCMessage[] = [];
      transport.onerror = (e) => errors.push(e.message);
      transport.onmessage = (m) => got.push(m);
      await transport.start();
      await expect(transport.send({ id: 1, method: 'x' } as unknown as JSONRPCMessage)).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
      expect(relay.stats.rejectedFrames).toBe(1);
      expect(proc.lines).toEqual([]);
      proc.stdout.write('[{"jsonrpc":"2.0","method":"a"},{"not":"rpc"}]\n');
      await settled();
      expect(got).toEqual([{ jsonrpc: '2.0', method: 'a' }]);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(/not a JSON-RPC message/);
      await transport.close();
    },
  );
});
