import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import { BoundedEventStore } from './event-store.js';

const note = (n: number): JSONRPCMessage => ({ jsonrpc: '2.0', method: 'notifications/message', params: { n } });

async function replay(store: BoundedEventStore, after: string): Promise<{ stream: string; got: [string, unknown][] }> {
  const got: [string, unknown][] = [];
  const stream = await store.replayEventsAfter(after, {
    send: (id, message) => {
      got.push([id, message]);
      return Promise.resolve();
    },
  });
  return { stream, got };
}

describe('BoundedEventStore', () => {
  it('numbers events <stream>.<seq> with one sequence over the store, from 1', async () => {
    const store = new BoundedEventStore();
    expect(await store.storeEvent('a', note(1))).toBe('a.1');
    expect(await store.storeEvent('a', note(2))).toBe('a.2');
    expect(await store.storeEvent('b', note(3))).toBe('b.3');
    expect(await store.storeEvent('a', note(4))).toBe('a.4');
    expect(store.size).toBe(4);
    expect((await replay(store, 'a.2')).got).toEqual([['a.4', note(4)]]);
  });

  it('refuses an id from the future, or of an event before its stream began', async () => {
    const store = new BoundedEventStore();
    await store.storeEvent('a', note(1));
    await store.storeEvent('b', note(2));
    await expect(replay(store, 'a.999')).rejects.toThrow(/names no event/);
    await expect(replay(store, 'b.1')).rejects.toThrow(/names no event/);
  });

  it('replays only the events after the given id, in order, and only of that stream', async () => {
    const store = new BoundedEventStore();
    for (let i = 1; i <= 5; i++) await store.storeEvent('s', note(i));
    await store.storeEvent('other', note(99));
    const { stream, got } = await replay(store, 's.2');
    expect(stream).toBe('s');
    expect(got).toEqual([
      ['s.3', note(3)],
      ['s.4', note(4)],
      ['s.5', note(5)],
    ]);
  });

  it('replays nothing after the latest event', async () => {
    const store = new BoundedEventStore();
    await store.storeEvent('s', note(1));
    await store.storeEvent('s', note(2));
    expect((await replay(store, 's.2')).got).toEqual([]);
  });

  it('handles stream ids that contain dots', async () => {
    const store = new BoundedEventStore();
    expect(await store.storeEvent('a.b', note(1))).toBe('a.b.1');
    await store.storeEvent('a.b', note(2));
    expect(await store.getStreamIdForEventId('a.b.1')).toBe('a.b');
    const { stream, got } = await replay(store, 'a.b.1');
    expect(stream).toBe('a.b');
    expect(got).toEqual([['a.b.2', note(2)]]);
  });

  it('keeps the last maxEvents per stream; a replay that would miss dropped events throws', async () => {
    const store = new BoundedEventStore({ maxEvents: 3, maxBytes: 1e9, maxStreams: 10 });
    for (let i = 1; i <= 5; i++) await store.storeEvent('s', note(i));
    expect(store.size).toBe(3);
    // s.1 and s.2 were dropped: after s.1 the client would miss s.2.
    await expect(replay(store, 's.1')).rejects.toThrow(/dropped/);
    // After s.2 nothing is missing (s.3 is still kept).
    expect((await replay(store, 's.2')).got.map(([id]) => id)).toEqual(['s.3', 's.4', 's.5']);
  });

  it('bounds each stream separately', async () => {
    const store = new BoundedEventStore({ maxEvents: 2, maxBytes: 1e9, maxStreams: 10 });
    for (let i = 1; i <= 4; i++) await store.storeEvent('a', note(i));
    await store.storeEvent('b', note(1));
    expect(store.size).toBe(3);
    expect((await replay(store, 'a.2')).got.map(([id]) => id)).toEqual(['a.3', 'a.4']);
  });

  it('keeps at most maxBytes per stream, dropping the oldest (but always the newest one)', async () => {
    const one = JSON.stringify(note(1)).length;
    const store = new BoundedEventStore({ maxEvents: 100, maxBytes: one * 2, maxStreams: 10 });
    for (let i = 1; i <= 4; i++) await store.storeEvent('s', note(i));
    expect(store.size).toBe(2);
    await expect(replay(store, 's.1')).rejects.toThrow();
    expect((await replay(store, 's.2')).got.map(([id]) => id)).toEqual(['s.3', 's.4']);

    const big: JSONRPCMessage = { jsonrpc: '2.0', method: 'x', params: { pad: 'x'.repeat(one * 5) } };
    expect(await store.storeEvent('s', big)).toBe('s.5');
    // An event bigger than the bound on its own is still kept (alone).
    expect(store.size).toBe(1);
    expect((await replay(store, 's.4')).got).toEqual([['s.5', big]]);
  });

  it('past maxStreams forgets the stream written least recently; replaying it throws', async () => {
    const store = new BoundedEventStore({ maxEvents: 10, maxBytes: 1e9, maxStreams: 2 });
    await store.storeEvent('a', note(1)); // a.1
    await store.storeEvent('b', note(1)); // b.2
    await store.storeEvent('a', note(2)); // a.3: a is now the most recent
    await store.storeEvent('c', note(1)); // c.4: b goes, not a
    await expect(replay(store, 'b.2')).rejects.toThrow(/no stream/);
    expect((await replay(store, 'a.1')).got).toEqual([['a.3', note(2)]]);
    expect((await replay(store, 'c.4')).got).toEqual([]);
    expect(store.size).toBe(3);
  });

  it('a stream dropped and written again never resumes from an earlier id (GET after many POSTs)', async () => {
    const store = new BoundedEventStore({ maxEvents: 10, maxBytes: 1e9, maxStreams: 1 });
    await store.storeEvent('_GET_stream', note(1)); // .1
    await store.storeEvent('_GET_stream', note(2)); // .2
    await store.storeEvent('post', note(3)); // the GET stream is dropped
    expect(await store.storeEvent('_GET_stream', note(4))).toBe('_GET_stream.4');
    // The client's cursor .1 would miss .2: refused, not a silent skip.
    await expect(replay(store, '_GET_stream.1')).rejects.toThrow(/names no event/);
  });

  it('getStreamIdForEventId: the stream of a good id, undefined for a malformed one', async () => {
    const store = new BoundedEventStore();
    await store.storeEvent('s', note(1));
    expect(await store.getStreamIdForEventId('s.1')).toBe('s');
    expect(await store.getStreamIdForEventId('s.42')).toBe('s');
    for (const bad of ['x', '.5', 's.0', 's.abc', 's.', 's.-1', 's.1.5x', ''])
      expect(await store.getStreamIdForEventId(bad), bad).toBeUndefined();
  });

  it('replay from a malformed or unknown id throws', async () => {
    const store = new BoundedEventStore();
    await store.storeEvent('s', note(1));
    for (const bad of ['x', '.5', 's.0', 's.abc', 'nope.1']) await expect(replay(store, bad), bad).rejects.toThrow();
  });

  it('stops and rejects when send rejects', async () => {
    const store = new BoundedEventStore();
    for (let i = 1; i <= 3; i++) await store.storeEvent('s', note(i));
    const sent: string[] = [];
    await expect(
      store.replayEventsAfter('s.1', {
        send: (id) => {
          sent.push(id);
          return Promise.reject(new Error('gone'));
        },
      }),
    ).rejects.toThrow('gone');
    expect(sent).toEqual(['s.2']);
  });
});
