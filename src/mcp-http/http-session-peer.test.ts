import { EventEmitter } from 'node:events';
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import type { RelayPeerClose, RelayPeerLink } from '../relay/relay-peer.js';
import { HttpSessionPeer, SERVER_BUSY } from './http-session-peer.js';

type Message = Record<string, unknown>;
type Send = (m: JSONRPCMessage, opts?: TransportSendOptions) => Promise<void>;

interface FakeTransport {
  send: ReturnType<typeof vi.fn<Send>>;
  close: ReturnType<typeof vi.fn<() => Promise<void>>>;
  start: () => Promise<void>;
  onmessage?: (m: JSONRPCMessage) => void;
  onclose?: () => void;
}

function fakeTransport(send?: Send): FakeTransport {
  const t: FakeTransport = {
    send: vi.fn<Send>(send ?? (() => Promise.resolve())),
    close: vi.fn(() => {
      t.onclose?.();
      return Promise.resolve();
    }),
    start: () => Promise.resolve(),
  };
  return t;
}

function fakeLink() {
  return { write: vi.fn(), rejected: vi.fn(), left: vi.fn(), event: vi.fn() } satisfies RelayPeerLink;
}

function setup(opts: { maxHeld?: number; send?: Send } = {}) {
  const transport = fakeTransport(opts.send);
  const link = fakeLink();
  const onEnded = vi.fn<(close?: RelayPeerClose) => void>();
  const onNote = vi.fn<(text: string) => void>();
  const peer = new HttpSessionPeer(transport as unknown as Transport, {
    label: 'http client',
    maxHeld: opts.maxHeld,
    onEnded,
    onNote,
  });
  peer.attached(link);
  /** A message from the client (what the SDK transport hands over). */
  const client = (m: Message) => transport.onmessage?.(m as unknown as JSONRPCMessage);
  /** A stdout line of the process; resolves when `done` is called. */
  const deliver = (value: unknown) =>
    new Promise<void>((resolve) => {
      peer.deliver(
        () => Buffer.from(JSON.stringify(value)),
        () => value,
        () => resolve(),
      );
    });
  return { transport, link, onEnded, onNote, peer, client, deliver };
}

const flush = () => new Promise((r) => setTimeout(r, 0));
const request = (id: number | string, method = 'tools/call', params: Message = {}): Message => ({
  jsonrpc: '2.0',
  id,
  method,
  params,
});
const result = (id: number | string): Message => ({ jsonrpc: '2.0', id, result: {} });
const progress = (token: number | string): Message => ({
  jsonrpc: '2.0',
  method: 'notifications/progress',
  params: { progressToken: token, progress: 1 },
});

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
process.on('unhandledRejection', onUnhandled);
afterEach(() => {
  expect(unhandled).toEqual([]);
  unhandled.length = 0;
});
afterAll(() => {
  process.off('unhandledRejection', onUnhandled);
});

describe('HttpSessionPeer', () => {
  it('sets the label and passes a client request to the link', () => {
    const { peer, link, client } = setup();
    expect(peer.label).toBe('http client');
    client(request(1));
    expect(link.write).toHaveBeenCalledExactlyOnceWith(request(1));
  });

  it('sends an answer by its id (no options) and calls done only after the send resolved', async () => {
    let finish!: () => void;
    const { transport, client, peer } = setup({
      send: () =>
        new Promise<void>((r) => {
          finish = r;
        }),
    });
    client(request(1));
    const done = vi.fn();
    peer.deliver(
      () => Buffer.from(''),
      () => result(1),
      done,
    );
    await flush();
    expect(transport.send).toHaveBeenCalledExactlyOnceWith(result(1), undefined);
    expect(done).not.toHaveBeenCalled();
    finish();
    await flush();
    expect(done).toHaveBeenCalledTimes(1);
  });

  it('relates a progress notification to the request that carried its token', async () => {
    const { transport, client, deliver } = setup();
    client(request(7, 'tools/call', { name: 't', _meta: { progressToken: 'tok' } }));
    await deliver(progress('tok'));
    expect(transport.send).toHaveBeenLastCalledWith(progress('tok'), { relatedRequestId: 7 });
  });

  it('sends a progress notification for an unknown token without relatedRequestId', async () => {
    const { transport, client, deliver } = setup();
    client(request(7, 'tools/call', { _meta: { progressToken: 'tok' } }));
    await deliver(progress('other'));
    expect(transport.send).toHaveBeenLastCalledWith(progress('other'), undefined);
  });

  it('forgets the token once its request is answered', async () => {
    const { transport, client, deliver } = setup();
    client(request(7, 'tools/call', { _meta: { progressToken: 5 } }));
    await deliver(result(7));
    await deliver(progress(5));
    expect(transport.send).toHaveBeenLastCalledWith(progress(5), undefined);
  });

  it('relates a request of the process to the one client request in flight', async () => {
    const { transport, client, deliver } = setup();
    client(request(3));
    const sampling = request('s1', 'sampling/createMessage');
    await deliver(sampling);
    expect(transport.send).toHaveBeenLastCalledWith(sampling, { relatedRequestId: 3 });
  });

  it('relates a request of the process to nothing with two in flight, or none', async () => {
    const { transport, client, deliver } = setup();
    const sampling = request('s1', 'sampling/createMessage');
    await deliver(sampling);
    expect(transport.send).toHaveBeenLastCalledWith(sampling, undefined);
    client(request(3));
    client(request(4));
    const sampling2 = request('s2', 'sampling/createMessage');
    await deliver(sampling2);
    expect(transport.send).toHaveBeenLastCalledWith(sampling2, undefined);
    // Once one is answered, the other is the one in flight.
    await deliver(result(3));
    const sampling3 = request('s3', 'elicitation/create');
    await deliver(sampling3);
    expect(transport.send).toHaveBeenLastCalledWith(sampling3, { relatedRequestId: 4 });
  });

  it('sends other notifications with no relatedRequestId, even with one request in flight', async () => {
    const { transport, client, deliver } = setup();
    client(request(3));
    const changed = { jsonrpc: '2.0', method: 'notifications/tools/list_changed' };
    await deliver(changed);
    expect(transport.send).toHaveBeenLastCalledWith(changed, undefined);
  });

  it('client notifications and answers are written but not counted as in flight', async () => {
    const { transport, link, client, deliver } = setup();
    client({ jsonrpc: '2.0', method: 'notifications/initialized' });
    client(result('s0'));
    expect(link.write).toHaveBeenCalledTimes(2);
    const sampling = request('s1', 'sampling/createMessage');
    await deliver(sampling);
    expect(transport.send).toHaveBeenLastCalledWith(sampling, undefined);
  });

  it('sends each message of a batch, in order', async () => {
    const { transport, client, deliver } = setup();
    client(request(1));
    client(request(2));
    await deliver([result(1), result(2), 'not an object', { jsonrpc: '2.0', method: 'notifications/x' }]);
    expect(transport.send.mock.calls.map(([m]) => m)).toEqual([
      result(1),
      result(2),
      { jsonrpc: '2.0', method: 'notifications/x' },
    ]);
  });

  it('keeps the order even when an earlier send is slow', async () => {
    const started: unknown[] = [];
    const finished: unknown[] = [];
    const { client, deliver, peer } = setup({
      send: async (m) => {
        started.push(m);
        if ((m as Message).id === 1) await new Promise((r) => setTimeout(r, 30));
        finished.push(m);
      },
    });
    client(request(1));
    client(request(2));
    const first = deliver(result(1));
    peer.answer(result(2) as unknown as JSONRPCMessage);
    const second = deliver({ jsonrpc: '2.0', method: 'notifications/x' });
    await Promise.all([first, second]);
    expect(started.map((m) => (m as Message).id ?? (m as Message).method)).toEqual([1, 2, 'notifications/x']);
    expect(finished).toEqual(started);
  });

  it('holds client messages while paused, and writes them in order on resume', () => {
    const { link, client, peer } = setup();
    peer.pause();
    client(request(1));
    client({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1 } });
    client(request(2));
    expect(link.write).not.toHaveBeenCalled();
    peer.resume();
    expect(link.write.mock.calls.map(([m]) => (m as Message).id ?? (m as Message).method)).toEqual([
      1,
      'notifications/cancelled',
      2,
    ]);
    // Not paused any more: straight through.
    client(request(3));
    expect(link.write).toHaveBeenCalledTimes(4);
  });

  it('keeps holding behind held messages until all are written (a pause during resume)', () => {
    const { link, client, peer } = setup();
    peer.pause();
    client(request(1));
    client(request(2));
    link.write.mockImplementationOnce(() => peer.pause());
    peer.resume();
    expect(link.write).toHaveBeenCalledTimes(1);
    client(request(3));
    expect(link.write).toHaveBeenCalledTimes(1);
    peer.resume();
    expect(link.write.mock.calls.map(([m]) => (m as Message).id)).toEqual([1, 2, 3]);
  });

  it('over maxHeld: a request is answered SERVER_BUSY, a notification dropped; both counted', async () => {
    const { transport, link, client, peer } = setup({ maxHeld: 2 });
    peer.pause();
    client(request(1));
    client(request(2));
    client(request(3));
    client({ jsonrpc: '2.0', method: 'notifications/cancelled' });
    expect(peer.dropped).toBe(2);
    await flush();
    expect(SERVER_BUSY).toBe(-32000);
    expect(transport.send).toHaveBeenCalledOnce();
    const [sent, options] = transport.send.mock.calls[0] ?? [];
    expect(options).toBeUndefined();
    expect(sent).toMatchObject({ jsonrpc: '2.0', id: 3, error: { code: SERVER_BUSY } });
    peer.resume();
    expect(link.write.mock.calls.map(([m]) => (m as Message).id)).toEqual([1, 2]);
  });

  it('detach: pending sends first, then transport.close, then onEnded once with the close', async () => {
    const order: string[] = [];
    let finish!: () => void;
    const { transport, onEnded, client, peer, link } = setup({
      send: () =>
        new Promise<void>((r) => {
          finish = () => {
            order.push('sent');
            r();
          };
        }),
    });
    transport.close.mockImplementation(() => {
      order.push('close');
      transport.onclose?.();
      return Promise.resolve();
    });
    onEnded.mockImplementation(() => order.push('ended'));
    client(request(1));
    peer.answer(result(1) as unknown as JSONRPCMessage);
    const close: RelayPeerClose = { code: 1012, reason: 'restarting' };
    peer.detach(close);
    await flush();
    expect(transport.close).not.toHaveBeenCalled();
    finish();
    await flush();
    expect(order).toEqual(['sent', 'close', 'ended']);
    expect(onEnded).toHaveBeenCalledExactlyOnceWith(close);
    // The transport's own onclose (from our close) does not count as the client leaving.
    expect(link.left).not.toHaveBeenCalled();
    peer.detach(close);
    await flush();
    expect(transport.close).toHaveBeenCalledOnce();
    expect(onEnded).toHaveBeenCalledOnce();
    // After detach, client messages go nowhere.
    client(request(2));
    expect(link.write).toHaveBeenCalledOnce();
  });

  it('detach still ends when transport.close rejects', async () => {
    const { transport, onEnded, peer } = setup();
    transport.close.mockImplementation(() => Promise.reject(new Error('already closed')));
    peer.detach();
    await flush();
    expect(onEnded).toHaveBeenCalledExactlyOnceWith(undefined);
  });

  it('the client ends the session (transport.onclose): link.left and onEnded once', async () => {
    const { transport, link, onEnded, peer, client } = setup();
    transport.onclose?.();
    transport.onclose?.();
    expect(link.left).toHaveBeenCalledOnce();
    expect(onEnded).toHaveBeenCalledExactlyOnceWith();
    // The relay then detaches the peer: nothing more happens.
    peer.detach({ code: 1000, reason: 'left' });
    await flush();
    expect(transport.close).not.toHaveBeenCalled();
    expect(onEnded).toHaveBeenCalledOnce();
    client(request(1));
    expect(link.write).not.toHaveBeenCalled();
  });

  it('a send that rejects is counted and noted, later sends and done still go on', async () => {
    const { transport, onNote, peer, client, deliver } = setup({
      send: (m) => ((m as Message).id === 1 ? Promise.reject(new Error('stream gone')) : Promise.resolve()),
    });
    client(request(1));
    client(request(2));
    await deliver(result(1));
    await deliver(result(2));
    expect(peer.dropped).toBe(1);
    expect(onNote).toHaveBeenCalledOnce();
    expect(onNote.mock.calls[0]?.[0]).toContain('http client');
    expect(onNote.mock.calls[0]?.[0]).toContain('stream gone');
    expect(transport.send).toHaveBeenCalledTimes(2);
    await flush();
  });

  it("detach answers the requests it still held (paused) with the relay's answer, then closes", async () => {
    const { transport, link, client, peer, onEnded } = setup();
    peer.pause();
    client(request(41));
    client({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1 } });
    expect(link.write).not.toHaveBeenCalled();
    peer.detach({
      code: 4000,
      reason: 'the process ended',
      answer: { message: 'the server exited', data: { phase: 'runtime', code: 'PROCESS_EXITED' } },
    });
    await vi.waitFor(() => expect(onEnded).toHaveBeenCalledTimes(1));
    expect(transport.send).toHaveBeenCalledTimes(1);
    expect(transport.send.mock.calls[0]?.[0]).toEqual({
      jsonrpc: '2.0',
      id: 41,
      error: { code: -32603, message: 'the server exited', data: { phase: 'runtime', code: 'PROCESS_EXITED' } },
    });
    expect(transport.send.mock.invocationCallOrder[0]).toBeLessThan(transport.close.mock.invocationCallOrder[0] ?? 0);
  });

  it('a send that throws at once (not a rejected promise) does not break the chain', async () => {
    let first = true;
    const { transport, deliver } = setup({
      send: () => {
        if (first) {
          first = false;
          throw new Error('synchronous failure');
        }
        return Promise.resolve();
      },
    });
    await deliver(result(1));
    await deliver(result(2));
    expect(transport.send).toHaveBeenCalledTimes(2);
  });
});

describe('HttpSessionPeer: a client that stops reading', () => {
  const response = (needDrain: boolean) => {
    const res = new EventEmitter() as EventEmitter & { writableNeedDrain: boolean; destroy: () => void };
    res.writableNeedDrain = needDrain;
    res.destroy = vi.fn(() => void res.emit('close'));
    return res;
  };
  const note = (size: number): Message => ({
    jsonrpc: '2.0',
    method: 'notifications/message',
    params: { level: 'info', data: 'x'.repeat(size) },
  });

  it('ends only the responses that stopped taking more, once 4 MiB were sent while they did', async () => {
    const { peer, deliver, onNote } = setup();
    const stalled = response(true);
    const reading = response(false);
    peer.watch(stalled);
    peer.watch(reading);
    for (let i = 0; i < 3; i++) await deliver(note(1024 * 1024));
    expect(stalled.destroy).not.toHaveBeenCalled();
    await deliver(note(1024 * 1024 + 1024));
    expect(stalled.destroy).toHaveBeenCalledTimes(1);
    expect(reading.destroy).not.toHaveBeenCalled();
    expect(onNote.mock.calls.at(-1)?.[0]).toMatch(/stopped reading: \d+ bytes waited for it/);
  });

  it('never ends a response that keeps up, however much is sent, and starts counting again after a drain', async () => {
    const { peer, deliver } = setup();
    const res = response(false);
    peer.watch(res);
    for (let i = 0; i < 10; i++) await deliver(note(1024 * 1024));
    res.writableNeedDrain = true;
    for (let i = 0; i < 3; i++) await deliver(note(1024 * 1024));
    res.writableNeedDrain = false;
    await deliver(note(10));
    res.writableNeedDrain = true;
    for (let i = 0; i < 3; i++) await deliver(note(1024 * 1024));
    expect(res.destroy).not.toHaveBeenCalled();
  });
});
