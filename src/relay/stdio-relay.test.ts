import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import type { WebSocket } from 'ws';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CLOSE_PROCESS_EXITED, CLOSE_STDOUT_CLOSED } from './close-codes.js';
import { StdioRelay, type RelayProcess } from './stdio-relay.js';

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
  ping(): void {}
  pause(): void {}
  resume(): void {}
  terminate(): void {}
  /** A client frame. */
  frame(message: unknown): void {
    this.emit('message', Buffer.from(JSON.stringify(message)), false);
  }
}

type StdoutState = 'open' | 'closed' | 'unknown';

function fakeProcess(answers: StdoutState[] = []): RelayProcess & { stdout: PassThrough; stdin: PassThrough; asked: number } {
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

function attached(proc: RelayProcess, events: string[] = [], onStdoutClosed?: () => void): { relay: StdioRelay; ws: FakeSocket } {
  const relay = new StdioRelay(proc, { stdoutProbeAfterMs: 40, onEvent: (m) => events.push(m), ...(onStdoutClosed === undefined ? {} : { onStdoutClosed }) });
  relays.push(relay);
  const ws = new FakeSocket();
  expect(relay.attach(ws as unknown as WebSocket)).toEqual({ attached: true });
  return { relay, ws };
}

const request = (id: number | string, method = 'tools/call') => ({ jsonrpc: '2.0', id, method, params: {} });

describe('StdioRelay: a process that closes its stdout but keeps running', () => {
  it('answers every request in flight with a runtime / STDOUT_CLOSED error, closes with 4002, and tells its owner', async () => {
    const proc = fakeProcess(['closed']);
    const events: string[] = [];
    let told = 0;
    const { ws } = attached(proc, events, () => told++);
    ws.frame(request(1));
    ws.frame(request('two'));
    ws.frame({ jsonrpc: '2.0', method: 'notifications/initialized' });
    await sleep(150);
    expect(proc.asked).toBe(1);
    const answers = ws.sent.map((s) => JSON.parse(s) as { id: unknown; error: { code: number; message: string; data: unknown } });
    expect(answers.map((a) => a.id)).toEqual([1, 'two']);
    for (const a of answers) {
      expect(a.error).toMatchObject({ code: -32603, data: { phase: 'runtime', code: 'STDOUT_CLOSED' } });
      expect(a.error.message).toMatch(/closed its stdout but is still running/);
    }
    expect(ws.closedWith).toEqual({ code: CLOSE_STDOUT_CLOSED, reason: 'the process closed its stdout but is still running' });
    expect(told).toBe(1);
    expect(events).toContain('the process closed its stdout but is still running; 2 request(s) in flight answered with an error');
    // A client that comes later is refused with the same reason.
    const late = new FakeSocket();
    expect(relays[0]?.attach(late as unknown as WebSocket)).toEqual({ attached: false, code: CLOSE_STDOUT_CLOSED, reason: 'the process closed its stdout but is still running' });
  });

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
    const errors = ws.sent.map((s) => JSON.parse(s) as { id?: unknown; error?: unknown }).filter((m) => m.error !== undefined);
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
