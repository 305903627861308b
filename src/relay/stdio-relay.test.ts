import { EventEmitter } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { WebSocket } from 'ws';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  CLOSE_ALREADY_ATTACHED,
  CLOSE_CAPABILITY_REVOKED,
  CLOSE_PROCESS_EXITED,
  CLOSE_STDOUT_CLOSED,
  CLOSE_TAKEN_OVER,
  CLOSE_TOO_BIG,
} from './close-codes.js';
import { RelayHub, type RelayUpgradeRouter } from './relay-hub.js';
import { RELAY_ERROR_CODE, StdioRelay, type RelayProcess, type RelayProcessExit } from './stdio-relay.js';

/** Just enough of a `ws` WebSocket for the relay: records what it was sent and how it was closed. */
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
  pings = 0;
  paused = 0;
  resumed = 0;
  terminated = false;
  ping(): void {
    this.pings++;
  }
  pause(): void {
    this.paused++;
  }
  resume(): void {
    this.resumed++;
  }
  terminate(): void {
    this.terminated = true;
    this.readyState = 3;
    this.emit('close');
  }
  /** A client frame. */
  frame(message: unknown): void {
    this.emit('message', Buffer.from(JSON.stringify(message)), false);
  }
}

type StdoutState = 'open' | 'closed' | 'unknown';

function fakeProcess(
  answers: StdoutState[] = [],
): RelayProcess & { stdout: PassThrough; stdin: PassThrough; asked: number } {
  const proc = {
    stdout: new PassThrough(),
    stdin: new PassThrough(),
    asked: 0,
    stdoutState: (): Promise<StdoutState> => {
      proc.asked++;
      return Promise.resolve(answers.shift() ?? 'open');
    },
  };
  proc.stdin.resume();
  return proc;
}

const relays: StdioRelay[] = [];
// Fake timers (and Date.now): "quiet for 40 ms" is exact, whatever the machine's load.
const sleep = (ms: number): Promise<void> => vi.advanceTimersByTimeAsync(ms).then(() => undefined);
beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  for (const r of relays.splice(0)) r.close();
  vi.useRealTimers();
});

function attached(
  proc: RelayProcess,
  events: string[] = [],
  onStdoutClosed?: () => void,
): { relay: StdioRelay; ws: FakeSocket } {
  const relay = new StdioRelay(proc, {
    stdoutProbeAfterMs: 40,
    onEvent: (m) => events.push(m),
    ...(onStdoutClosed === undefined ? {} : { onStdoutClosed }),
  });
  relays.push(relay);
  const ws = new FakeSocket();
  expect(relay.attach(ws as unknown as WebSocket)).toEqual({ attached: true });
  return { relay, ws };
}

const request = (id: number | string, method = 'tools/call') => ({ jsonrpc: '2.0', id, method, params: {} });

describe('StdioRelay: a process that closes its stdout but keeps running', () => {
  it(
    'answers every request in flight with a runtime / ' + 'STDOUT_CLOSED error, closes with 4002, and tells its owner',
    async () => {
      const proc = fakeProcess(['closed']);
      const events: string[] = [];
      let told = 0;
      const { ws } = attached(proc, events, () => told++);
      ws.frame(request(1));
      ws.frame(request('two'));
      ws.frame({ jsonrpc: '2.0', method: 'notifications/initialized' });
      await sleep(150);
      expect(proc.asked).toBe(1);
      const answers = ws.sent.map(
        (s) => JSON.parse(s) as { id: unknown; error: { code: number; message: string; data: unknown } },
      );
      expect(answers.map((a) => a.id)).toEqual([1, 'two']);
      for (const a of answers) {
        expect(a.error).toMatchObject({ code: -32603, data: { phase: 'runtime', code: 'STDOUT_CLOSED' } });
        expect(a.error.message).toMatch(/closed its stdout but is still running/);
      }
      expect(ws.closedWith).toEqual({
        code: CLOSE_STDOUT_CLOSED,
        reason: 'the process closed its stdout but is still running',
      });
      expect(told).toBe(1);
      expect(events).toContain(
        'the process closed its stdout but is still running; 2 request(s) in flight answered with an error',
      );
      // A client that comes later is refused with the same reason.
      const late = new FakeSocket();
      expect(relays[0]?.attach(late as unknown as WebSocket)).toEqual({
        attached: false,
        code: CLOSE_STDOUT_CLOSED,
        reason: 'the process closed its stdout but is still running',
      });
    },
  );

  it('never asks while nothing waits, nor while stdout keeps talking, and stops asking once answered', async () => {
    const proc = fakeProcess();
    const { ws } = attached(proc);
    ws.frame({ jsonrpc: '2.0', method: 'notifications/initialized' });
    await sleep(120);
    expect(proc.asked).toBe(0); // a notification waits for nothing
    ws.frame(request(7));
    for (let i = 0; i < 6; i++) {
      proc.stdout.write('{"jsonrpc":"2.0","method":"notifications/progress","params":{}}\n');
      await sleep(20);
    }
    expect(proc.asked).toBe(0); // quiet for less than 40 ms at a time
    proc.stdout.write('{"jsonrpc":"2.0","id":7,"result":{}}\n');
    await sleep(150);
    expect(proc.asked).toBe(0);
    expect(ws.closedWith).toBeNull();
  });

  it('a cancelled request waits for nothing; an open stdout is asked again less and less often', async () => {
    const proc = fakeProcess(['open', 'open', 'open']);
    const { ws } = attached(proc);
    ws.frame(request(1));
    ws.frame({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1 } });
    await sleep(120);
    expect(proc.asked).toBe(0);
    ws.frame(request(2));
    // Asked at 40, 120 and 280 ms: the interval doubles.
    await sleep(39);
    expect(proc.asked).toBe(0);
    await sleep(2);
    expect(proc.asked).toBe(1);
    await sleep(80);
    expect(proc.asked).toBe(2);
    await sleep(160);
    expect(proc.asked).toBe(3);
    expect(ws.closedWith).toBeNull();
  });

  it('tracks every request of a batch, and an answer in a batch', async () => {
    const proc = fakeProcess(['closed']);
    const { ws } = attached(proc);
    ws.frame([request(1), request(2), request(3)]);
    proc.stdout.write('[{"jsonrpc":"2.0","id":2,"result":{}}]\n');
    await sleep(150);
    const errors = ws.sent
      .map((s) => JSON.parse(s) as { id?: unknown; error?: unknown })
      .filter((m) => m.error !== undefined);
    expect(errors.map((m) => m.id)).toEqual([1, 3]);
  });

  it('a process without stdoutState (or one that cannot tell) is left alone', async () => {
    const plain = { stdout: new PassThrough(), stdin: new PassThrough() };
    plain.stdin.resume();
    const { ws } = attached(plain);
    ws.frame(request(1));
    const unsure = fakeProcess(['unknown', 'unknown', 'unknown']);
    const second = attached(unsure);
    second.ws.frame(request(1));
    await sleep(200);
    expect(ws.closedWith).toBeNull();
    expect(second.ws.closedWith).toBeNull();
    expect(unsure.asked).toBeGreaterThan(0);
  });

  it('the requests of a client that left are forgotten; stdout ending is still an exit (4000)', async () => {
    const proc = fakeProcess(['closed']);
    const { ws } = attached(proc);
    ws.frame(request(1));
    ws.emit('close');
    await sleep(120);
    expect(proc.asked).toBe(0);
    const next = new FakeSocket();
    relays[0]?.attach(next as unknown as WebSocket);
    proc.stdout.end();
    await sleep(10);
    expect(next.closedWith?.code).toBe(CLOSE_PROCESS_EXITED);
  });
});

/** A stdin whose writes are "full" at once (highWaterMark 1) and that drains only when told to, while `holding`. */
function gatedStdin(): { stdin: Writable; lines: string[]; hold: () => void; release: () => void } {
  const lines: string[] = [];
  let holding = false;
  let waiting: (() => void) | null = null;
  const stdin = new Writable({
    highWaterMark: 1,
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString('utf8'));
      if (holding) waiting = cb;
      else cb();
    },
  });
  return {
    stdin,
    lines,
    hold: () => (holding = true),
    release: () => {
      holding = false;
      const cb = waiting;
      waiting = null;
      cb?.();
    },
  };
}

const tick = (): Promise<void> => new Promise((resolve) => process.nextTick(resolve));

describe('StdioRelay with a WebSocket peer', () => {
  it('sends each stdout line as one text frame with its bytes untouched; non-JSON lines are counted, not sent', () => {
    const proc = fakeProcess();
    const previews: string[] = [];
    const relay = new StdioRelay(proc, { onNonJsonLine: (p) => previews.push(p) });
    relays.push(relay);
    const ws = new FakeSocket();
    relay.attach(ws as unknown as WebSocket);
    proc.stdout.write(
      '{ "jsonrpc" : "2.0", "method": "notifications/message", "params": {"s": "\\u00e9"} }\r\n' +
        'starting up...\n[{"jsonrpc":"2.0","id":1,"result":{}}]\n',
    );
    expect(ws.sent).toEqual([
      '{ "jsonrpc" : "2.0", "method": "notifications/message", "params": {"s": "\\u00e9"} }',
      '[{"jsonrpc":"2.0","id":1,"result":{}}]',
    ]);
    expect(previews).toEqual(['starting up...']);
    expect(relay.stats).toMatchObject({ messagesOut: 2, nonJsonLines: 1 });
  });

  it(
    'answers a binary frame, a frame that is not JSON and one that is not JSON-RPC with a JSON-RPC error, and ' +
      'writes none of them',
    () => {
      const proc = fakeProcess();
      const written: string[] = [];
      proc.stdin.on('data', (c: Buffer) => written.push(c.toString()));
      const { relay, ws } = attached(proc);
      ws.emit('message', Buffer.from('{"jsonrpc":"2.0","method":"x"}'), true);
      ws.emit('message', Buffer.from('{"jsonrpc":'), false);
      ws.frame({ jsonrpc: '1.0', id: 5, method: 'x' });
      ws.frame([]);
      const errors = ws.sent.map((s) => JSON.parse(s) as { id: unknown; error: { code: number; message: string } });
      expect(errors.map((e) => [e.id, e.error.code])).toEqual([
        [null, -32600],
        [null, -32700],
        [5, -32600],
        [null, -32600],
      ]);
      expect(errors[2]?.error.message).toBe('invalid request: jsonrpc must be "2.0"');
      expect(relay.stats.rejectedFrames).toBe(4);
      expect(written).toEqual([]);
    },
  );

  it(
    'writes a good frame as one line, re-serialised: whitespace and newlines inside the frame ' +
      'never reach stdin as framing',
    async () => {
      const proc = fakeProcess();
      const written: string[] = [];
      proc.stdin.on('data', (c: Buffer) => written.push(c.toString()));
      const { relay, ws } = attached(proc);
      ws.emit(
        'message',
        Buffer.from('{\n  "jsonrpc": "2.0",\n  "id": 1,\n  "method": "tools/call",\n  "params": {"text": "a\\nb"}\n}'),
        false,
      );
      await tick();
      expect(written).toEqual(['{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"text":"a\\nb"}}\n']);
      expect(relay.stats).toMatchObject({ messagesIn: 1, bytesIn: written[0]?.length });
    },
  );

  it('pauses the socket while stdin is full and resumes it once it drains', async () => {
    const gate = gatedStdin();
    const proc = { stdout: new PassThrough(), stdin: gate.stdin };
    const { ws } = attached(proc);
    gate.hold();
    ws.frame(request(1));
    expect(ws.paused).toBe(1);
    ws.frame(request(2)); // a frame already received is still written, with no second pause
    expect(ws.paused).toBe(1);
    await tick();
    expect(ws.resumed).toBe(0);
    gate.release();
    await tick();
    await tick();
    expect(ws.resumed).toBe(1);
    expect(gate.lines.map((l) => (JSON.parse(l) as { id: number }).id)).toEqual([1, 2]);
  });

  it('keeps lines while nobody is attached and delivers them first on attach', () => {
    const proc = fakeProcess();
    const events: string[] = [];
    const relay = new StdioRelay(proc, { onEvent: (m) => events.push(m) });
    relays.push(relay);
    proc.stdout.write('{"jsonrpc":"2.0","method":"a"}\n{"jsonrpc":"2.0","method":"b"}\n');
    expect(relay.bufferedLines).toBe(2);
    const ws = new FakeSocket();
    relay.attach(ws as unknown as WebSocket);
    proc.stdout.write('{"jsonrpc":"2.0","method":"c"}\n');
    expect(ws.sent.map((s) => (JSON.parse(s) as { method: string }).method)).toEqual(['a', 'b', 'c']);
    expect(relay.bufferedLines).toBe(0);
    expect(events).toContain('client attached; delivering 2 buffered line(s)');
  });

  it('pauses stdout when the detached buffer is full, and resumes it on attach', () => {
    const proc = fakeProcess();
    const relay = new StdioRelay(proc, { detachedBufferBytes: 64 });
    relays.push(relay);
    proc.stdout.write(`{"jsonrpc":"2.0","method":"${'x'.repeat(80)}"}\n`);
    expect(proc.stdout.isPaused()).toBe(true);
    relay.attach(new FakeSocket() as unknown as WebSocket);
    expect(proc.stdout.isPaused()).toBe(false);
  });

  it(
    "refuses a second client with 4409; one that takes over answers the first one's requests (RELAY_DROPPED) and " +
      'closes it with 4001',
    () => {
      const proc = fakeProcess();
      const events: string[] = [];
      const { relay, ws: first } = attached(proc, events);
      first.frame(request(1));
      const second = new FakeSocket();
      expect(relay.attach(second as unknown as WebSocket)).toMatchObject({
        attached: false,
        code: CLOSE_ALREADY_ATTACHED,
      });
      expect(second.closedWith?.code).toBe(CLOSE_ALREADY_ATTACHED);
      expect(first.closedWith).toBeNull();
      const third = new FakeSocket();
      expect(relay.attach(third as unknown as WebSocket, { takeover: true })).toEqual({ attached: true });
      const answer = JSON.parse(first.sent[0] ?? '') as { id: number; error: { code: number; data: unknown } };
      expect(answer).toMatchObject({
        id: 1,
        error: { code: RELAY_ERROR_CODE, data: { phase: 'runtime', code: 'RELAY_DROPPED' } },
      });
      expect(first.closedWith).toEqual({ code: CLOSE_TAKEN_OVER, reason: 'another client took over this process' });
      proc.stdout.write('{"jsonrpc":"2.0","id":1,"result":{}}\n');
      expect(third.sent).toHaveLength(1);
      expect(first.sent).toHaveLength(1);
      // Frames of the client taken over no longer reach the process.
      const written: string[] = [];
      proc.stdin.on('data', (c: Buffer) => written.push(c.toString()));
      first.frame(request(9));
      expect(written).toEqual([]);
      expect(events).toEqual(
        expect.arrayContaining([
          'refused a second client (no takeover)',
          'a new client took over the relay',
          'client detached',
        ]),
      );
    },
  );

  it(
    'closes the client with 1009 and a reason on an over-limit line, ' + "and relays the next client's lines after it",
    () => {
      const proc = fakeProcess();
      const events: string[] = [];
      const relay = new StdioRelay(proc, { maxLineBytes: 64, onEvent: (m) => events.push(m) });
      relays.push(relay);
      const ws = new FakeSocket();
      relay.attach(ws as unknown as WebSocket);
      proc.stdout.write(`{"jsonrpc":"2.0","method":"${'x'.repeat(100)}"}\n`);
      expect(ws.closedWith?.code).toBe(CLOSE_TOO_BIG);
      expect(ws.closedWith?.reason).toMatch(/exceeded 64 bytes/);
      expect(relay.stats.overLimitLines).toBe(1);
      expect(relay.attached).toBe(false);
      proc.stdout.write('{"jsonrpc":"2.0","method":"after"}\n');
      const next = new FakeSocket();
      relay.attach(next as unknown as WebSocket);
      expect(next.sent).toEqual(['{"jsonrpc":"2.0","method":"after"}']);
      expect(events.some((e) => e.startsWith('a stdout line exceeded 64 bytes'))).toBe(true);
    },
  );

  it('pings every heartbeat and terminates a client that missed one', async () => {
    const proc = fakeProcess();
    const events: string[] = [];
    const relay = new StdioRelay(proc, { heartbeatMs: 100, onEvent: (m) => events.push(m) });
    relays.push(relay);
    const ws = new FakeSocket();
    relay.attach(ws as unknown as WebSocket);
    await sleep(100);
    expect(ws.pings).toBe(1);
    ws.emit('pong');
    await sleep(100);
    expect(ws.pings).toBe(2);
    expect(ws.terminated).toBe(false);
    await sleep(100);
    expect(ws.terminated).toBe(true);
    expect(events).toContain('client missed its heartbeat; closing');
    expect(relay.attached).toBe(false);
    await sleep(300);
    expect(ws.pings).toBe(2); // the heartbeat stopped with the client
  });

  it("answers requests in flight with the exit record's phase and code when the process ends", async () => {
    let exited: (exit: RelayProcessExit) => void = () => undefined;
    const proc = { ...fakeProcess(), exited: new Promise<RelayProcessExit>((r) => (exited = r)) };
    const { ws } = attached(proc);
    ws.frame(request(1));
    exited({ reason: 'oom', exitCode: 137, signal: 'SIGKILL' });
    proc.stdout.end();
    await sleep(10);
    expect(JSON.parse(ws.sent[0] ?? '')).toMatchObject({
      id: 1,
      error: { data: { phase: 'runtime', code: 'OOM_KILLED' } },
    });
    expect(ws.closedWith).toEqual({ code: CLOSE_PROCESS_EXITED, reason: 'the process ended its output' });
  });
});

describe('RelayHub', () => {
  it(
    'mounts its route on anything with upgrade(), finds ' + 'relays by session and process, and attaches with takeover',
    () => {
      const { hub, routes, req } = mountedHub();
      expect(routes.map((r) => [r.path, r.protocol, r.public])).toEqual([
        ['/v1/sessions/{session}/processes/{process}/ws', 'mcp', false],
        ['/v1/relay/{capability}', 'mcp', true],
      ]);
      const route = routes[0] as (typeof routes)[number];
      expect(() => route.check(req(), { session: 's', process: 'p' })).toThrow(
        expect.objectContaining({ code: 'NOT_FOUND', phase: 'relay_connect' }) as unknown as Error,
      );
      const proc = fakeProcess();
      const relay = hub.register('s', 'p', proc);
      relays.push(relay);
      expect(hub.get('s', 'p')).toBe(relay);
      expect(hub.get('s', 'q')).toBeUndefined();
      expect(() => route.check(req(), { session: 's', process: 'p' })).not.toThrow();
      const alone = { 'x-mcp-box-exclusive': '1' };
      const a = new FakeSocket();
      route.handler(a as unknown as WebSocket, req(alone), { session: 's', process: 'p' });
      const b = new FakeSocket();
      route.handler(b as unknown as WebSocket, req({ ...alone, 'x-mcp-box-takeover': '1' }), {
        session: 's',
        process: 'p',
      });
      expect(a.closedWith?.code).toBe(CLOSE_TAKEN_OVER);
      hub.unregister('s', 'p', relay, 'stopped');
      expect(hub.get('s', 'p')).toBeUndefined();
      expect(b.closedWith).toEqual({ code: CLOSE_PROCESS_EXITED, reason: 'stopped' });
    },
  );

  it('gives each registered relay a capability of its own, valid until its process ends or it is revoked', () => {
    const { hub, routes, req } = mountedHub();
    const byCapability = routes[1] as (typeof routes)[number];
    const refused = (capability: string): void =>
      expect(() => byCapability.check(req(), { capability })).toThrow(
        expect.objectContaining({ code: 'NOT_FOUND', phase: 'relay_connect' }) as unknown as Error,
      );
    const relay = hub.register('s', 'p', fakeProcess());
    relays.push(relay);
    const other = hub.register('s', 'q', fakeProcess());
    relays.push(other);
    const cap = hub.capability('s', 'p') ?? '';
    expect(cap).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(hub.capability('s', 'q')).not.toBe(cap);
    expect(() => byCapability.check(req(), { capability: cap })).not.toThrow();
    refused('x'.repeat(43));
    refused('');
    // The refusal never carries the capability it was given.
    try {
      byCapability.check(req(), { capability: 'y'.repeat(43) });
    } catch (err) {
      expect(String((err as Error).message)).not.toContain('y'.repeat(43));
    }
    // A client through the capability, then a revoke: it is closed (4003), the old capability refused, a new one works.
    const a = new FakeSocket();
    byCapability.handler(a as unknown as WebSocket, req(), { capability: cap });
    expect(relay.attached).toBe(true);
    const fresh = hub.revoke('s', 'p') ?? '';
    expect(fresh).not.toBe(cap);
    expect(a.closedWith?.code).toBe(CLOSE_CAPABILITY_REVOKED);
    expect(relay.attached).toBe(false);
    refused(cap);
    const b = new FakeSocket();
    byCapability.handler(b as unknown as WebSocket, req(), { capability: fresh });
    expect(relay.attached).toBe(true);
    // Revoking again rotates once more; the client that came in through the header route stays.
    expect(hub.revoke('s', 'q')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // The process ends: its capability ends with it; a new registration gets a new one.
    hub.unregister('s', 'p', relay, 'stopped');
    refused(fresh);
    expect(hub.capability('s', 'p')).toBeUndefined();
    expect(hub.revoke('s', 'p')).toBeUndefined();
    const again = hub.register('s', 'p', fakeProcess());
    relays.push(again);
    expect([cap, fresh]).not.toContain(hub.capability('s', 'p'));
  });

  it('lets a client that cannot send headers take over with ?takeover=1', () => {
    const { hub, routes, req } = mountedHub();
    const byCapability = routes[1] as (typeof routes)[number];
    const relay = hub.register('s', 'p', fakeProcess());
    relays.push(relay);
    const cap = hub.capability('s', 'p') ?? '';
    const a = new FakeSocket();
    byCapability.handler(a as unknown as WebSocket, req({}, `/v1/relay/${cap}?exclusive=1`), { capability: cap });
    const b = new FakeSocket();
    byCapability.handler(b as unknown as WebSocket, req({}, `/v1/relay/${cap}?exclusive=1`), { capability: cap });
    expect(b.closedWith?.code).toBe(CLOSE_ALREADY_ATTACHED);
    const c = new FakeSocket();
    byCapability.handler(c as unknown as WebSocket, req({}, `/v1/relay/${cap}?exclusive=1&takeover=1`), {
      capability: cap,
    });
    expect(a.closedWith?.code).toBe(CLOSE_TAKEN_OVER);
    expect(c.closedWith).toBeNull();
  });

  it('lets clients that ask for nothing share the process: none is refused or taken over', () => {
    const { hub, routes, req } = mountedHub();
    const byCapability = routes[1] as (typeof routes)[number];
    const relay = hub.register('s', 'p', fakeProcess());
    relays.push(relay);
    const cap = hub.capability('s', 'p') ?? '';
    const clients = [new FakeSocket(), new FakeSocket(), new FakeSocket()];
    for (const ws of clients) byCapability.handler(ws as unknown as WebSocket, req(), { capability: cap });
    expect(clients.map((ws) => ws.closedWith)).toEqual([null, null, null]);
    expect(relay.attachedLabel).toBe('shared clients');
    // One that asks to hold the process alone is refused while they share it.
    const alone = new FakeSocket();
    byCapability.handler(alone as unknown as WebSocket, req({ 'x-mcp-box-exclusive': '1' }), { capability: cap });
    expect(alone.closedWith?.code).toBe(CLOSE_ALREADY_ATTACHED);
  });

  it('nothing in src/relay/ imports from src/server/ or src/supervisor/', () => {
    const dir = fileURLToPath(new URL('.', import.meta.url));
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
      const text = readFileSync(join(dir, file), 'utf8');
      expect(text, file).not.toMatch(/from '\.\.\/(server|supervisor)\//);
    }
  });
});

/** A hub mounted on a recording router, and requests to feed its routes. */
function mountedHub() {
  const routes: {
    path: string;
    protocol: string;
    public: boolean;
    check: (req: IncomingMessage, params: Record<string, string>) => void;
    handler: (ws: WebSocket, req: IncomingMessage, params: Record<string, string>) => void;
  }[] = [];
  const router: RelayUpgradeRouter = {
    upgrade: (path, protocol, check, handler, opts) =>
      routes.push({ path, protocol, check, handler, public: opts?.public === true }),
  };
  const hub = new RelayHub();
  hub.mount(router);
  const req = (headers: Record<string, string> = {}, url = '/'): IncomingMessage =>
    ({ headers, url }) as unknown as IncomingMessage;
  return { hub, routes, req };
}
