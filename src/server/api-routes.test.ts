import { createServer, get, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setImmediate as yieldOnce } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { streamEvents } from './api-routes.js';
import { EventLog } from './event-log.js';

describe('streamEvents (GET /v1/events)', () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
  });

  /** A server streaming `events` to every request; `served` tells which responses have closed. */
  async function sseServer(events: EventLog, opts: { maxBufferedBytes?: number } = {}): Promise<{ connect: (after?: number) => Promise<IncomingMessage>; served: { closed: boolean }[] }> {
    const served: { closed: boolean }[] = [];
    server = createServer((req, res) => {
      const entry = { closed: false };
      served.push(entry);
      res.on('close', () => (entry.closed = true));
      streamEvents(res, events, Number(req.headers['last-event-id'] ?? 0), opts);
    });
    await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    const connect = (after = 0): Promise<IncomingMessage> =>
      new Promise((resolve) => get({ host: '127.0.0.1', port, path: '/', headers: { 'Last-Event-ID': String(after) } }, resolve).on('error', () => undefined));
    return { connect, served };
  }

  it('answers at once when there is nothing to catch up on', async () => {
    const events = new EventLog();
    events.append('status', { n: 1 });
    const { connect } = await sseServer(events);
    const res = await Promise.race([connect(1), new Promise<null>((r) => setTimeout(() => r(null), 2000))]);
    expect(res?.statusCode).toBe(200);
    expect(res?.headers['content-type']).toMatch(/^text\/event-stream/);
  });

  it('drops a client that stops reading once it is too far behind; readers keep getting every event', async () => {
    const events = new EventLog(100_000);
    const { connect, served } = await sseServer(events, { maxBufferedBytes: 256 * 1024 });
    const stalled = await connect();
    stalled.on('error', () => undefined).pause(); // its connection is reset when it is dropped
    const reader = await connect();
    let received = 0;
    let text = '';
    reader.setEncoding('utf8').on('data', (chunk: string) => {
      text += chunk;
      const frames = text.split('\n\n');
      text = frames.pop() ?? '';
      received += frames.length;
    });
    // Append (yielding so the sockets flush) until the stalled client is dropped: the kernel's
    // socket buffers take a few MiB first, then the bound applies.
    const pad = 'x'.repeat(16 * 1024);
    let sent = 0;
    while (served[0]?.closed !== true && sent < 4000) {
      events.append('status', { pad });
      sent++;
      await yieldOnce();
    }
    expect(served[0]?.closed).toBe(true);
    expect(sent).toBeLessThan(4000);
    expect(served[1]?.closed).toBe(false);
    expect(events.listenerCount('event')).toBe(1);
    for (let i = 0; i < 300 && received < sent; i++) await new Promise((r) => setTimeout(r, 10));
    expect(received).toBe(sent);
  });
});
