import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it, vi } from 'vitest';
import { ClientMux, NO_CLIENT_FOR_REQUEST } from './client-mux.js';
import { RELAY_ERROR_CODE } from './json-rpc.js';
import type { RelayPeer, RelayPeerClose, RelayPeerLink } from './relay-peer.js';

type Message = Record<string, unknown>;
const wire = (m: unknown): JSONRPCMessage => m as JSONRPCMessage;

/** The relay's side of the mux: records what would reach the process's stdin, and the rest of the link. */
class FakeRelay implements RelayPeerLink {
  readonly written: Message[] = [];
  rejectedCount = 0;
  leftCount = 0;
  readonly events: string[] = [];
  write(message: JSONRPCMessage | JSONRPCMessage[]): void {
    // The relay serialises what it is given: a copy keeps later mutations out of the record.
    this.written.push(JSON.parse(JSON.stringify(message)) as Message);
  }
  rejected(): void {
    this.rejectedCount++;
  }
  left(): void {
    this.leftCount++;
  }
  event(message: string): void {
    this.events.push(message);
  }
}

/** A member: records everything the mux does to it; `send` speaks as the client through its link. */
class FakePeer implements RelayPeer {
  link: RelayPeerLink | null = null;
  attachedCount = 0;
  /** Lines delivered, as parsed from their bytes (checked against `message()`), with their `done`. */
  readonly delivered: { message: Message; done: () => void }[] = [];
  readonly answers: Message[] = [];
  /** Both channels, in the order they arrived. */
  readonly inbox: { via: 'deliver' | 'answer'; message: Message }[] = [];
  pauses = 0;
  resumes = 0;
  readonly detaches: (RelayPeerClose | undefined)[] = [];
  holdDone = false;
  constructor(readonly label: string) {}
  attached(link: RelayPeerLink): void {
    this.attachedCount++;
    this.link = link;
  }
  deliver(bytes: () => Buffer, message: () => unknown, done: () => void): void {
    const parsed = JSON.parse(bytes().toString('utf8')) as Message;
    // The bytes and the parsed value must say the same thing.
    expect(message()).toStrictEqual(parsed);
    this.delivered.push({ message: parsed, done });
    this.inbox.push({ via: 'deliver', message: parsed });
    if (!this.holdDone) done();
  }
  answer(message: JSONRPCMessage): void {
    const m = JSON.parse(JSON.stringify(message)) as Message;
    this.answers.push(m);
    this.inbox.push({ via: 'answer', message: m });
  }
  pause(): void {
    this.pauses++;
  }
  resume(): void {
    this.resumes++;
  }
  detach(close?: RelayPeerClose): void {
    this.detaches.push(close);
  }
  send(message: Message | Message[]): void {
    if (this.link === null) throw new Error(`${this.label} was never attached`);
    this.link.write(wire(message));
  }
  get got(): Message[] {
    return this.delivered.map((d) => d.message);
  }
}

function setup(count = 2): { mux: ClientMux; relay: FakeRelay; peers: FakePeer[] } {
  const mux = new ClientMux();
  const relay = new FakeRelay();
  mux.attached(relay);
  const peers: FakePeer[] = [];
  for (let i = 0; i < count; i++) {
    const peer = new FakePeer(`client ${String.fromCharCode(97 + i)}`);
    expect(mux.join(peer)).toEqual({ attached: true });
    expect(peer.attachedCount).toBe(1);
    peers.push(peer);
  }
  return { mux, relay, peers };
}

/** One stdout line of the process, as the relay hands it over. */
function fromProcess(mux: ClientMux, m: unknown, done: () => void = vi.fn()): () => void {
  mux.deliver(
    () => Buffer.from(JSON.stringify(m), 'utf8'),
    () => m,
    done,
  );
  return done;
}

const req = (id: string | number, method: string, params?: Message): Message =>
  params === undefined ? { jsonrpc: '2.0', id, method } : { jsonrpc: '2.0', id, method, params };
const ok = (id: unknown, result: unknown): Message => ({ jsonrpc: '2.0', id, result });
const note = (method: string, params?: Message): Message =>
  params === undefined ? { jsonrpc: '2.0', method } : { jsonrpc: '2.0', method, params };

function lastWritten(relay: FakeRelay): Message {
  const m = relay.written.at(-1);
  if (m === undefined) throw new Error('nothing was written');
  return m;
}

describe('ClientMux: request ids', () => {
  it('gives each request a distinct numeric id and restores the original id (and its type) on the answer', () => {
    const { mux, relay, peers } = setup();
    const [a, b] = peers as [FakePeer, FakePeer];
    a.send(req(1, 'tools/list', { cursor: 'x' }));
    b.send(req(1, 'tools/list'));
    a.send(req('1', 'resources/list'));
    b.send(req('a', 'prompts/list'));
    expect(relay.written).toHaveLength(4);
    const ids = relay.written.map((m) => m.id);
    for (const id of ids) expect(typeof id).toBe('number');
    expect(new Set(ids).size).toBe(4);
    // Everything but the id goes through as it was.
    expect(relay.written[0]).toStrictEqual({
      jsonrpc: '2.0',
      id: ids[0],
      method: 'tools/list',
      params: { cursor: 'x' },
    });
    expect(relay.written.map((m) => m.method)).toEqual(['tools/list', 'tools/list', 'resources/list', 'prompts/list']);

    // Answers in another order than the requests.
    fromProcess(mux, ok(ids[3], { who: 'b-a' }));
    expect(b.got).toStrictEqual([ok('a', { who: 'b-a' })]);
    expect(a.got).toEqual([]);

    fromProcess(mux, ok(ids[2], { who: 'a-"1"' }));
    expect(a.got).toStrictEqual([ok('1', { who: 'a-"1"' })]);
    expect(typeof a.got[0]?.id).toBe('string');

    fromProcess(mux, { jsonrpc: '2.0', id: ids[0], error: { code: -32602, message: 'bad cursor' } });
    expect(a.got[1]).toStrictEqual({ jsonrpc: '2.0', id: 1, error: { code: -32602, message: 'bad cursor' } });
    expect(typeof a.got[1]?.id).toBe('number');

    fromProcess(mux, ok(ids[1], { who: 'b-1' }));
    expect(b.got[1]).toStrictEqual(ok(1, { who: 'b-1' }));

    expect(a.got).toHaveLength(2);
    expect(b.got).toHaveLength(2);
    expect(a.answers).toEqual([]);
    expect(b.answers).toEqual([]);
  });

  it('drops a second answer for the same id, answers with an unknown id and answers with a string id', () => {
    const { mux, relay, peers } = setup();
    const [a, b] = peers as [FakePeer, FakePeer];
    a.send(req(1, 'tools/list'));
    const own = relay.written[0]?.id as number;
    const done1 = fromProcess(mux, ok(own, {}));
    expect(a.got).toHaveLength(1);
    const done2 = fromProcess(mux, ok(own, { again: true }));
    const done3 = fromProcess(mux, ok(own + 100, {}));
    const done4 = fromProcess(mux, ok(String(own), {}));
    expect(a.got).toHaveLength(1);
    expect(b.got).toEqual([]);
    for (const d of [done1, done2, done3, done4]) expect(d).toHaveBeenCalledTimes(1);
  });

  it('splits a batch from a member into one write per message, each remapped', () => {
    const { mux, relay, peers } = setup();
    const [a] = peers as [FakePeer];
    a.send([req(1, 'tools/list'), req(2, 'tools/list'), note('notifications/roots/list_changed')]);
    expect(relay.written).toHaveLength(3);
    expect(Array.isArray(relay.written[0])).toBe(false);
    expect(relay.written[0]?.id).not.toBe(relay.written[1]?.id);
    expect(relay.written[2]).toStrictEqual(note('notifications/roots/list_changed'));
    fromProcess(mux, ok(relay.written[1]?.id, { n: 2 }));
    expect(a.got).toStrictEqual([ok(2, { n: 2 })]);
  });
});

describe('ClientMux: initialize', () => {
  const initParams = (name: string): Message => ({
    protocolVersion: '2025-06-18',
    capabilities: { roots: { listChanged: name === 'a' }, name },
    clientInfo: { name, version: '1' },
  });
  const initResult = { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 's' } };

  it('reaches the process once; a later member gets the cached result with its own id; initialized goes once', () => {
    const { mux, relay, peers } = setup(3);
    const [a, b, c] = peers as [FakePeer, FakePeer, FakePeer];
    expect(mux.capabilities(a)).toBeUndefined();
    a.send(req(0, 'initialize', initParams('a')));
    expect(relay.written).toHaveLength(1);
    expect(relay.written[0]?.method).toBe('initialize');
    expect(relay.written[0]?.params).toStrictEqual(initParams('a'));
    fromProcess(mux, ok(relay.written[0]?.id, initResult));
    expect(a.got).toStrictEqual([ok(0, initResult)]);
    a.send(note('notifications/initialized'));
    expect(relay.written).toHaveLength(2);
    expect(relay.written[1]).toStrictEqual(note('notifications/initialized'));

    b.send(req('init-b', 'initialize', initParams('b')));
    expect(relay.written).toHaveLength(2);
    expect(b.inbox).toStrictEqual([{ via: 'answer', message: ok('init-b', initResult) }]);
    b.send(note('notifications/initialized'));
    expect(relay.written).toHaveLength(2);

    c.send(req(7, 'initialize', initParams('c')));
    expect(c.answers).toStrictEqual([ok(7, initResult)]);
    expect(relay.written).toHaveLength(2);
    expect(a.inbox).toHaveLength(1);

    expect(mux.capabilities(a)).toStrictEqual(initParams('a').capabilities);
    expect(mux.capabilities(b)).toStrictEqual(initParams('b').capabilities);
    expect(mux.capabilities(c)).toStrictEqual(initParams('c').capabilities);
    expect(mux.capabilities(new FakePeer('stranger'))).toBeUndefined();
  });

  it("answers a later member that asked for an older revision with it, for a newer one with the process's", () => {
    const { mux, relay, peers } = setup(4);
    const [a, b, c, d] = peers as [FakePeer, FakePeer, FakePeer, FakePeer];
    const asking = (version: string): Message => ({ ...initParams('x'), protocolVersion: version });
    a.send(req(1, 'initialize', asking('2025-06-18')));
    // One asks while the first is pending, for the oldest revision.
    b.send(req(2, 'initialize', asking('2024-11-05')));
    fromProcess(mux, ok(relay.written[0]?.id, initResult));
    expect(a.got).toStrictEqual([ok(1, initResult)]);
    expect(b.got).toStrictEqual([ok(2, { ...initResult, protocolVersion: '2024-11-05' })]);
    c.send(req(3, 'initialize', asking('2025-03-26')));
    expect(c.answers).toStrictEqual([ok(3, { ...initResult, protocolVersion: '2025-03-26' })]);
    // Newer than the process, or a revision nobody knows: the process's own, as a server answers.
    d.send(req(4, 'initialize', asking('2025-11-25')));
    d.send(req(5, 'initialize', asking('1999-01-01')));
    expect(d.answers).toStrictEqual([ok(4, initResult), ok(5, initResult)]);
    expect(relay.written).toHaveLength(1);
  });

  it('answers an initialize sent while the first is pending when the process answers', () => {
    const { mux, relay, peers } = setup(3);
    const [a, b, c] = peers as [FakePeer, FakePeer, FakePeer];
    a.send(req(1, 'initialize', initParams('a')));
    b.send(req('b-init', 'initialize', initParams('b')));
    expect(relay.written).toHaveLength(1);
    expect(b.inbox).toEqual([]);
    const done = fromProcess(mux, ok(relay.written[0]?.id, initResult));
    expect(done).toHaveBeenCalledTimes(1);
    expect(a.got).toStrictEqual([ok(1, initResult)]);
    expect(b.got).toStrictEqual([ok('b-init', initResult)]);
    expect(c.inbox).toEqual([]);
    expect(mux.capabilities(b)).toStrictEqual(initParams('b').capabilities);
    c.send(req(3, 'initialize', initParams('c')));
    expect(c.answers).toStrictEqual([ok(3, initResult)]);
    expect(relay.written).toHaveLength(1);
  });

  it('does not cache a failed initialize: the next one goes to the process', () => {
    const { mux, relay, peers } = setup(3);
    const [a, b, c] = peers as [FakePeer, FakePeer, FakePeer];
    a.send(req(1, 'initialize', initParams('a')));
    const failure = { code: -32602, message: 'unsupported protocol version' };
    fromProcess(mux, { jsonrpc: '2.0', id: relay.written[0]?.id, error: failure });
    expect(a.got).toStrictEqual([{ jsonrpc: '2.0', id: 1, error: failure }]);

    b.send(req(2, 'initialize', initParams('b')));
    expect(relay.written).toHaveLength(2);
    expect(relay.written[1]?.method).toBe('initialize');
    expect(relay.written[1]?.params).toStrictEqual(initParams('b'));
    expect(relay.written[1]?.id).not.toBe(relay.written[0]?.id);
    expect(b.inbox).toEqual([]);
    fromProcess(mux, ok(relay.written[1]?.id, initResult));
    expect(b.got).toStrictEqual([ok(2, initResult)]);

    c.send(req(3, 'initialize', initParams('c')));
    expect(relay.written).toHaveLength(2);
    expect(c.answers).toStrictEqual([ok(3, initResult)]);
    expect(a.got).toHaveLength(1);
  });

  // The members waiting for the first initialize are answered even when the member that sent it left meanwhile
  // (else they, and every later initialize, would wait for ever).
  it('answers a waiting initialize even when the member whose initialize reached the process left', () => {
    const { mux, relay, peers } = setup(3);
    const [a, b, c] = peers as [FakePeer, FakePeer, FakePeer];
    a.send(req(1, 'initialize', initParams('a')));
    b.send(req('b-init', 'initialize', initParams('b')));
    a.link?.left();
    fromProcess(mux, ok(relay.written[0]?.id, initResult));
    // Whether the mux uses that answer or sends b's initialize again, b must get an answer.
    for (const m of relay.written.slice(1)) if (m.method === 'initialize') fromProcess(mux, ok(m.id, initResult));
    expect(b.inbox.map((e) => e.message)).toStrictEqual([ok('b-init', initResult)]);
    c.send(req(3, 'initialize', initParams('c')));
    for (const m of relay.written.slice(1)) if (m.method === 'initialize') fromProcess(mux, ok(m.id, initResult));
    expect(c.inbox.map((e) => e.message)).toStrictEqual([ok(3, initResult)]);
  });

  // The relay answering the first initialize in the process's place answers those waiting on it too.
  it("answers a waiting initialize when the relay answers the first one in the process's place", () => {
    const { mux, relay, peers } = setup(2);
    const [a, b] = peers as [FakePeer, FakePeer];
    a.send(req(1, 'initialize', initParams('a')));
    b.send(req('b-init', 'initialize', initParams('b')));
    const error = { code: -32603, message: 'mcp-box: no answer will reach this client' };
    mux.answer(wire({ jsonrpc: '2.0', id: relay.written[0]?.id, error }));
    expect(a.answers).toStrictEqual([{ jsonrpc: '2.0', id: 1, error }]);
    for (const m of relay.written.slice(1)) if (m.method === 'initialize') fromProcess(mux, ok(m.id, initResult));
    expect(b.inbox).toHaveLength(1);
    expect(b.inbox[0]?.message.id).toBe('b-init');
  });
});

describe('ClientMux: progress tokens', () => {
  it("replaces each request's token and routes progress only to its owner with the original token", () => {
    const { mux, relay, peers } = setup(3);
    const [a, b, c] = peers as [FakePeer, FakePeer, FakePeer];
    a.send(req(1, 'tools/call', { name: 'slow', arguments: { n: 1 }, _meta: { progressToken: 'tok', other: 1 } }));
    b.send(req(1, 'tools/call', { name: 'slow', _meta: { progressToken: 'tok' } }));
    a.send(req(2, 'tools/call', { name: 'slow', _meta: { progressToken: 7 } }));
    const tokens = relay.written.map((m) => ((m.params as Message)._meta as Message).progressToken);
    expect(new Set(tokens).size).toBe(3);
    for (const t of tokens) {
      expect(typeof t).toBe('string');
      expect(t).not.toBe('tok');
    }
    // The rest of params and _meta is kept.
    expect(relay.written[0]?.params).toStrictEqual({
      name: 'slow',
      arguments: { n: 1 },
      _meta: { progressToken: tokens[0], other: 1 },
    });

    const progress = (token: unknown, n: number): Message =>
      note('notifications/progress', { progressToken: token, progress: n, total: 10, message: `step ${n}` });
    fromProcess(mux, progress(tokens[0], 1));
    expect(a.got).toStrictEqual([progress('tok', 1)]);
    expect(b.got).toEqual([]);
    fromProcess(mux, progress(tokens[1], 2));
    expect(b.got).toStrictEqual([progress('tok', 2)]);
    expect(a.got).toHaveLength(1);
    fromProcess(mux, progress(tokens[2], 3));
    expect(a.got[1]).toStrictEqual(progress(7, 3));
    expect(typeof (a.got[1]?.params as Message).progressToken).toBe('number');
    expect(c.got).toEqual([]);

    // An unknown token reaches nobody.
    const doneUnknown = fromProcess(mux, progress('mbx-999', 4));
    expect(doneUnknown).toHaveBeenCalledTimes(1);

    // After its answer, the token is gone; the others still work.
    fromProcess(mux, ok(relay.written[0]?.id, { content: [] }));
    expect(a.got).toHaveLength(3);
    fromProcess(mux, progress(tokens[0], 5));
    expect(a.got).toHaveLength(3);
    expect(b.got).toHaveLength(1);
    expect(c.got).toEqual([]);
    fromProcess(mux, progress(tokens[1], 6));
    expect(b.got[1]).toStrictEqual(progress('tok', 6));
  });

  it('forgets the tokens of a member that left', () => {
    const { mux, relay, peers } = setup();
    const [a, b] = peers as [FakePeer, FakePeer];
    a.send(req(1, 'tools/call', { _meta: { progressToken: 'p' } }));
    const token = ((relay.written[0]?.params as Message)._meta as Message).progressToken;
    a.link?.left();
    fromProcess(mux, note('notifications/progress', { progressToken: token, progress: 1 }));
    expect(a.got).toEqual([]);
    expect(b.got).toEqual([]);
  });

  // A request the relay answered in the process's place gives its progress token back, like one the process answered.
  it("drops progress for a request the relay answered in the process's place", () => {
    const { mux, relay, peers } = setup();
    const [a] = peers as [FakePeer];
    a.send(req(1, 'tools/call', { _meta: { progressToken: 'p' } }));
    const own = relay.written[0]?.id;
    const token = ((relay.written[0]?.params as Message)._meta as Message).progressToken;
    mux.answer(wire({ jsonrpc: '2.0', id: own, error: { code: -32603, message: 'gone' } }));
    expect(a.answers).toHaveLength(1);
    fromProcess(mux, note('notifications/progress', { progressToken: token, progress: 1 }));
    expect(a.got).toEqual([]);
  });
});

describe('ClientMux: notifications/cancelled', () => {
  it("names the mux's id for a member's own request in flight, and is dropped otherwise", () => {
    const { mux, relay, peers } = setup();
    const [a, b] = peers as [FakePeer, FakePeer];
    a.send(req(5, 'tools/call'));
    b.send(req(5, 'tools/call'));
    const [ownA, ownB] = relay.written.map((m) => m.id);
    a.send(note('notifications/cancelled', { requestId: 5, reason: 'user gave up' }));
    expect(relay.written).toHaveLength(3);
    expect(lastWritten(relay)).toStrictEqual(
      note('notifications/cancelled', { requestId: ownA, reason: 'user gave up' }),
    );

    // Same value of another type, an id it never used, no requestId: nothing.
    a.send(note('notifications/cancelled', { requestId: '5' }));
    a.send(note('notifications/cancelled', { requestId: 99 }));
    a.send(note('notifications/cancelled', {}));
    expect(relay.written).toHaveLength(3);

    b.send(note('notifications/cancelled', { requestId: 5 }));
    expect(lastWritten(relay)).toStrictEqual(note('notifications/cancelled', { requestId: ownB }));

    // Once answered, it is no longer in flight.
    fromProcess(mux, ok(ownA, {}));
    a.send(note('notifications/cancelled', { requestId: 5 }));
    expect(relay.written).toHaveLength(4);
  });

  it("cannot cancel another member's request", () => {
    const { relay, peers } = setup();
    const [a, b] = peers as [FakePeer, FakePeer];
    a.send(req('x', 'tools/call'));
    b.send(note('notifications/cancelled', { requestId: 'x' }));
    expect(relay.written).toHaveLength(1);
  });
});

describe('ClientMux: notifications of the process', () => {
  it('sends every other notification to every member, as it was', () => {
    const { mux, peers } = setup(3);
    const listChanged = note('notifications/tools/list_changed');
    const log = note('notifications/message', { level: 'info', data: 'hello' });
    const updated = note('notifications/resources/updated', { uri: 'file:///x' });
    const done = fromProcess(mux, listChanged);
    fromProcess(mux, log);
    fromProcess(mux, updated);
    for (const p of peers) {
      expect(p.got).toStrictEqual([listChanged, log, updated]);
      expect(p.answers).toEqual([]);
    }
    expect(done).toHaveBeenCalledTimes(1);
    peers[0]?.link?.left();
    fromProcess(mux, listChanged);
    expect(peers[0]?.got).toHaveLength(3);
    expect(peers[1]?.got).toHaveLength(4);
    expect(peers[2]?.got).toHaveLength(4);
  });
});

describe('ClientMux: requests of the process', () => {
  const roots = req('s1', 'roots/list');

  it('goes to the one member with a request in flight; only its answer is written', () => {
    const { mux, relay, peers } = setup(3);
    const [a, b, c] = peers as [FakePeer, FakePeer, FakePeer];
    a.send(req(1, 'tools/call', { name: 'uses-roots' }));
    const done = fromProcess(mux, roots);
    expect(done).toHaveBeenCalledTimes(1);
    expect(a.got).toStrictEqual([roots]);
    expect(b.got).toEqual([]);
    expect(c.got).toEqual([]);
    expect(relay.written).toHaveLength(1);

    b.send(ok('s1', { roots: [{ uri: 'file:///b' }] }));
    expect(relay.rejectedCount).toBe(1);
    expect(relay.written).toHaveLength(1);

    a.send(ok('s1', { roots: [{ uri: 'file:///a' }] }));
    expect(relay.written).toHaveLength(2);
    expect(lastWritten(relay)).toStrictEqual(ok('s1', { roots: [{ uri: 'file:///a' }] }));

    // Answered once: a second answer is refused too.
    a.send(ok('s1', { roots: [] }));
    expect(relay.rejectedCount).toBe(2);
    expect(relay.written).toHaveLength(2);
  });

  it('matches the id of the answer exactly (7 is not "7")', () => {
    const { mux, relay, peers } = setup();
    const [a] = peers as [FakePeer];
    a.send(req(1, 'tools/call'));
    fromProcess(mux, req(7, 'sampling/createMessage', { messages: [] }));
    expect(a.got).toStrictEqual([req(7, 'sampling/createMessage', { messages: [] })]);
    a.send(ok('7', {}));
    expect(relay.rejectedCount).toBe(1);
    expect(relay.written).toHaveLength(1);
    a.send({ jsonrpc: '2.0', id: 7, error: { code: -1, message: 'declined' } });
    expect(relay.rejectedCount).toBe(1);
    expect(lastWritten(relay)).toStrictEqual({ jsonrpc: '2.0', id: 7, error: { code: -1, message: 'declined' } });
  });

  it('answers the process with NO_CLIENT_FOR_REQUEST when no member has a request in flight', () => {
    const { mux, relay, peers } = setup();
    const done = fromProcess(mux, roots);
    expect(done).toHaveBeenCalledTimes(1);
    for (const p of peers) expect(p.inbox).toEqual([]);
    expect(relay.written).toHaveLength(1);
    const m = lastWritten(relay);
    expect(m.jsonrpc).toBe('2.0');
    expect(m.id).toBe('s1');
    expect(m.result).toBeUndefined();
    const error = m.error as { code: number; message: string };
    expect(error.code).toBe(NO_CLIENT_FOR_REQUEST);
    expect(error.message).toContain('no client has a request in flight');
    expect(error.message).toContain('roots/list');
    expect(error.message).toContain('2 clients share');
    // A member may not answer it afterwards.
    peers[0]?.send(ok('s1', { roots: [] }));
    expect(relay.rejectedCount).toBe(1);
  });

  it('answers the process with NO_CLIENT_FOR_REQUEST when two members have requests in flight', () => {
    const { mux, relay, peers } = setup(3);
    const [a, b, c] = peers as [FakePeer, FakePeer, FakePeer];
    a.send(req(1, 'tools/call'));
    b.send(req(1, 'tools/call'));
    fromProcess(mux, req(42, 'elicitation/create', { message: 'ok?' }));
    for (const p of [a, b, c]) expect(p.inbox).toEqual([]);
    expect(relay.written).toHaveLength(3);
    const m = lastWritten(relay);
    expect(m.id).toBe(42);
    const error = m.error as { code: number; message: string };
    expect(error.code).toBe(NO_CLIENT_FOR_REQUEST);
    expect(error.message).toContain('2 clients have requests in flight');
    expect(error.message).toContain('elicitation/create');

    // Once b's request is answered, a alone is busy and gets the next one.
    fromProcess(mux, ok(relay.written[1]?.id, {}));
    fromProcess(mux, roots);
    expect(a.got).toStrictEqual([roots]);
    expect(relay.written).toHaveLength(3);
  });
});

describe('ClientMux: resources/subscribe', () => {
  const sub = (id: string | number, uri: string): Message => req(id, 'resources/subscribe', { uri });
  const unsub = (id: string | number, uri: string): Message => req(id, 'resources/unsubscribe', { uri });

  it('writes the first subscribe and the last unsubscribe of each URI; answers the others {}', () => {
    const { mux, relay, peers } = setup(3);
    const [a, b, c] = peers as [FakePeer, FakePeer, FakePeer];
    a.send(sub(1, 'file:///u'));
    expect(relay.written).toHaveLength(1);
    expect(relay.written[0]?.method).toBe('resources/subscribe');
    expect(relay.written[0]?.params).toStrictEqual({ uri: 'file:///u' });
    fromProcess(mux, ok(relay.written[0]?.id, {}));
    expect(a.got).toStrictEqual([ok(1, {})]);

    b.send(sub('b1', 'file:///u'));
    expect(relay.written).toHaveLength(1);
    expect(b.answers).toStrictEqual([ok('b1', {})]);

    // Another URI is counted on its own.
    c.send(sub(1, 'file:///v'));
    expect(relay.written).toHaveLength(2);
    expect(relay.written[1]?.params).toStrictEqual({ uri: 'file:///v' });

    // An unsubscribe from a member that never subscribed: answered, not written.
    c.send(unsub(2, 'file:///u'));
    expect(c.answers).toStrictEqual([ok(2, {})]);
    expect(relay.written).toHaveLength(2);

    a.send(unsub(2, 'file:///u'));
    expect(relay.written).toHaveLength(2);
    expect(a.answers).toStrictEqual([ok(2, {})]);

    b.send(unsub('b2', 'file:///u'));
    expect(relay.written).toHaveLength(3);
    expect(lastWritten(relay).method).toBe('resources/unsubscribe');
    expect(lastWritten(relay).params).toStrictEqual({ uri: 'file:///u' });
    fromProcess(mux, ok(lastWritten(relay).id, {}));
    expect(b.got).toStrictEqual([ok('b2', {})]);

    // Counted again from zero.
    b.send(sub('b3', 'file:///u'));
    expect(relay.written).toHaveLength(4);
    expect(lastWritten(relay).method).toBe('resources/subscribe');
  });

  it("gives a leaving member's subscriptions back: an unsubscribe when a URI's count reaches zero", () => {
    const { mux, relay, peers } = setup();
    const [a, b] = peers as [FakePeer, FakePeer];
    a.send(sub(1, 'file:///u'));
    b.send(sub(1, 'file:///u'));
    a.send(sub(2, 'file:///v'));
    a.send(sub(3, 'file:///v')); // twice by the same member
    expect(relay.written.map((m) => m.params)).toStrictEqual([{ uri: 'file:///u' }, { uri: 'file:///v' }]);
    const usedIds = new Set(relay.written.map((m) => m.id));

    a.link?.left();
    expect(relay.written).toHaveLength(3);
    const out = lastWritten(relay);
    expect(out.jsonrpc).toBe('2.0');
    expect(out.method).toBe('resources/unsubscribe');
    expect(out.params).toStrictEqual({ uri: 'file:///v' });
    expect(typeof out.id).toBe('number');
    expect(usedIds.has(out.id as number)).toBe(false);
    // The answer to the mux's own unsubscribe reaches nobody.
    fromProcess(mux, ok(out.id, {}));
    expect(b.got).toEqual([]);

    b.link?.left();
    expect(relay.written).toHaveLength(4);
    expect(lastWritten(relay).method).toBe('resources/unsubscribe');
    expect(lastWritten(relay).params).toStrictEqual({ uri: 'file:///u' });
  });
});

describe('ClientMux: logging/setLevel', () => {
  const setLevel = (id: string | number, level: string): Message => req(id, 'logging/setLevel', { level });

  it('sends the most verbose level over members; a less verbose one is answered {} without a write', () => {
    const { mux, relay, peers } = setup(3);
    const [a, b, c] = peers as [FakePeer, FakePeer, FakePeer];
    a.send(setLevel(1, 'warning'));
    expect(relay.written).toHaveLength(1);
    expect(relay.written[0]?.params).toStrictEqual({ level: 'warning' });
    fromProcess(mux, ok(relay.written[0]?.id, {}));
    expect(a.got).toStrictEqual([ok(1, {})]);

    b.send(setLevel('b1', 'error'));
    expect(relay.written).toHaveLength(1);
    expect(b.answers).toStrictEqual([ok('b1', {})]);

    b.send(setLevel('b2', 'debug'));
    expect(relay.written).toHaveLength(2);
    expect(lastWritten(relay).params).toStrictEqual({ level: 'debug' });
    fromProcess(mux, ok(lastWritten(relay).id, {}));
    expect(b.got).toStrictEqual([ok('b2', {})]);
    expect(a.got).toHaveLength(1);

    c.send(setLevel(1, 'info'));
    expect(relay.written).toHaveLength(2);
    expect(c.answers).toStrictEqual([ok(1, {})]);

    // The most verbose member leaves: the next level (c's info) is sent.
    b.link?.left();
    expect(relay.written).toHaveLength(3);
    expect(lastWritten(relay).method).toBe('logging/setLevel');
    expect(lastWritten(relay).params).toStrictEqual({ level: 'info' });
    expect(typeof lastWritten(relay).id).toBe('number');

    // A member less verbose than the level sent leaves: nothing changes.
    a.link?.left();
    expect(relay.written).toHaveLength(3);

    c.link?.left();
    expect(relay.written).toHaveLength(3);
  });

  it("the most verbose member asking for less sends the others' most verbose level, answered to it", () => {
    const { mux, relay, peers } = setup();
    const [a, b] = peers as [FakePeer, FakePeer];
    a.send(setLevel(1, 'debug'));
    b.send(setLevel(1, 'notice'));
    expect(relay.written).toHaveLength(1);
    a.send(setLevel(2, 'emergency'));
    expect(relay.written).toHaveLength(2);
    expect(lastWritten(relay).params).toStrictEqual({ level: 'notice' });
    fromProcess(mux, ok(lastWritten(relay).id, {}));
    expect(a.got).toStrictEqual([ok(2, {})]);
    expect(b.got).toEqual([]);
  });
});

describe('ClientMux: a member that leaves', () => {
  it('takes its requests with it: their answers are dropped, its later writes ignored', () => {
    const { mux, relay, peers } = setup();
    const [a, b] = peers as [FakePeer, FakePeer];
    a.send(req(1, 'tools/call'));
    b.send(req(1, 'tools/call'));
    expect(mux.size).toBe(2);
    a.link?.left();
    expect(mux.size).toBe(1);
    expect(relay.events.some((e) => e.includes('client a left'))).toBe(true);
    const done = fromProcess(mux, ok(relay.written[0]?.id, { for: 'a' }));
    expect(done).toHaveBeenCalledTimes(1);
    expect(a.inbox).toEqual([]);
    expect(b.inbox).toEqual([]);
    fromProcess(mux, ok(relay.written[1]?.id, { for: 'b' }));
    expect(b.got).toStrictEqual([ok(1, { for: 'b' })]);

    a.send(req(2, 'tools/list'));
    a.send(note('notifications/tools/list_changed'));
    expect(relay.written).toHaveLength(2);
    // Leaving twice changes nothing.
    a.link?.left();
    expect(mux.size).toBe(1);
  });

  it('a process request given to it gets a NO_CLIENT_FOR_REQUEST error; its requests no longer count as busy', () => {
    const { mux, relay, peers } = setup();
    const [a, b] = peers as [FakePeer, FakePeer];
    a.send(req(1, 'tools/call'));
    fromProcess(mux, req('s1', 'roots/list'));
    expect(a.got).toStrictEqual([req('s1', 'roots/list')]);
    a.link?.left();
    expect(relay.written).toHaveLength(2);
    const m = lastWritten(relay);
    expect(m.id).toBe('s1');
    expect((m.error as { code: number }).code).toBe(NO_CLIENT_FOR_REQUEST);
    expect((m.error as { message: string }).message).toContain('left');
    expect(b.inbox).toEqual([]);

    // a's request is gone: b alone is busy now.
    b.send(req(1, 'tools/call'));
    fromProcess(mux, req('s2', 'roots/list'));
    expect(b.got).toStrictEqual([req('s2', 'roots/list')]);
    expect(relay.written).toHaveLength(3);
  });
});

describe("ClientMux: the relay's side", () => {
  it("routes answer() (the relay's answer with the mux's id) to the right member with its original id", () => {
    const { mux, relay, peers } = setup();
    const [a, b] = peers as [FakePeer, FakePeer];
    a.send(req('q', 'tools/call'));
    b.send(req('q', 'tools/call'));
    const [ownA, ownB] = relay.written.map((m) => m.id);
    const error = { code: -32603, message: 'mcp-box: the process exited before answering', data: { phase: 'x' } };
    mux.answer(wire({ jsonrpc: '2.0', id: ownB, error }));
    expect(b.answers).toStrictEqual([{ jsonrpc: '2.0', id: 'q', error }]);
    expect(a.answers).toEqual([]);
    // Once: again, or an id of no request, reaches nobody; the process's late answer is dropped.
    mux.answer(wire({ jsonrpc: '2.0', id: ownB, error }));
    mux.answer(wire({ jsonrpc: '2.0', id: 999, error }));
    mux.answer(wire({ jsonrpc: '2.0', id: String(ownA), error }));
    fromProcess(mux, ok(ownB, {}));
    expect(b.inbox).toHaveLength(1);
    expect(a.answers).toEqual([]);
    mux.answer(wire({ jsonrpc: '2.0', id: ownA, error }));
    expect(a.answers).toStrictEqual([{ jsonrpc: '2.0', id: 'q', error }]);
    expect(a.got).toEqual([]);
  });

  it('pause() and resume() reach every member; a member joining while paused is paused at once', () => {
    const { mux, peers } = setup();
    const [a, b] = peers as [FakePeer, FakePeer];
    expect(a.pauses + b.pauses).toBe(0);
    mux.pause();
    expect([a.pauses, b.pauses]).toEqual([1, 1]);
    const c = new FakePeer('client c');
    expect(mux.join(c)).toEqual({ attached: true });
    expect(c.pauses).toBe(1);
    expect(c.resumes).toBe(0);
    mux.resume();
    expect([a.resumes, b.resumes, c.resumes]).toEqual([1, 1, 1]);
    const d = new FakePeer('client d');
    mux.join(d);
    expect(d.pauses).toBe(0);
    // A member that left is not paused any more.
    a.link?.left();
    mux.pause();
    expect([a.pauses, b.pauses, c.pauses, d.pauses]).toEqual([1, 2, 2, 1]);
  });

  it('detach(close) ends every member with that close; a later join is refused with it', () => {
    const { mux, relay, peers } = setup();
    const [a, b] = peers as [FakePeer, FakePeer];
    a.send(req(1, 'tools/call'));
    const close: RelayPeerClose = { code: 4001, reason: 'another client took over this process' };
    mux.detach(close);
    expect(a.detaches).toStrictEqual([close]);
    expect(b.detaches).toStrictEqual([close]);
    expect(mux.size).toBe(0);

    const c = new FakePeer('client c');
    expect(mux.join(c)).toStrictEqual({ attached: false, code: 4001, reason: 'another client took over this process' });
    expect(c.detaches).toStrictEqual([close]);
    expect(c.attachedCount).toBe(0);
    expect(mux.size).toBe(0);

    // Nothing reaches the process or the members any more.
    a.send(req(2, 'tools/list'));
    expect(relay.written).toHaveLength(1);
    fromProcess(mux, note('notifications/tools/list_changed'));
    expect(a.inbox).toEqual([]);
    expect(a.detaches).toHaveLength(1);
  });

  it('detach() without a close ends the members without one and refuses later joins with 1000', () => {
    const { mux, peers } = setup();
    mux.detach();
    for (const p of peers) expect(p.detaches).toStrictEqual([undefined]);
    const c = new FakePeer('client c');
    const result = mux.join(c);
    expect(result.attached).toBe(false);
    expect(result).toMatchObject({ code: 1000 });
    expect(c.detaches).toHaveLength(1);
    expect(c.detaches[0]?.code).toBe(1000);
  });

  it("calls deliver's done once, only after every member called its own", () => {
    const { mux, peers } = setup(3);
    const [a, b, c] = peers as [FakePeer, FakePeer, FakePeer];
    a.holdDone = true;
    const done = fromProcess(mux, note('notifications/tools/list_changed'));
    expect(b.got).toHaveLength(1);
    expect(c.got).toHaveLength(1);
    expect(done).not.toHaveBeenCalled();
    a.delivered[0]?.done();
    expect(done).toHaveBeenCalledTimes(1);

    // Two held by two members, in one batch.
    b.holdDone = true;
    a.send(req(1, 'tools/call'));
    const batchDone = fromProcess(mux, [note('notifications/prompts/list_changed'), note('notifications/message')]);
    expect(a.delivered).toHaveLength(3);
    expect(b.delivered).toHaveLength(3);
    expect(batchDone).not.toHaveBeenCalled();
    a.delivered[1]?.done();
    a.delivered[2]?.done();
    b.delivered[1]?.done();
    expect(batchDone).not.toHaveBeenCalled();
    b.delivered[2]?.done();
    expect(batchDone).toHaveBeenCalledTimes(1);

    // A line for nobody, or not a message at all: done at once.
    expect(fromProcess(mux, ok(12345, {}))).toHaveBeenCalledTimes(1);
    expect(fromProcess(mux, [1, 'x', null])).toHaveBeenCalledTimes(1);
    expect(done).toHaveBeenCalledTimes(1);
    expect(batchDone).toHaveBeenCalledTimes(1);
  });

  it('splits a batch from the process and routes each message', () => {
    const { mux, relay, peers } = setup();
    const [a, b] = peers as [FakePeer, FakePeer];
    a.send(req(1, 'tools/call', { _meta: { progressToken: 'pa' } }));
    b.send(req('x', 'tools/call'));
    const [ownA, ownB] = relay.written.map((m) => m.id);
    const tokenA = ((relay.written[0]?.params as Message)._meta as Message).progressToken;
    const listChanged = note('notifications/tools/list_changed');
    const done = fromProcess(mux, [
      note('notifications/progress', { progressToken: tokenA, progress: 1 }),
      ok(ownB, { for: 'b' }),
      listChanged,
      'not a message',
      ok(ownA, { for: 'a' }),
    ]);
    expect(done).toHaveBeenCalledTimes(1);
    expect(a.got).toStrictEqual([
      note('notifications/progress', { progressToken: 'pa', progress: 1 }),
      listChanged,
      ok(1, { for: 'a' }),
    ]);
    expect(b.got).toStrictEqual([ok('x', { for: 'b' }), listChanged]);
    // Each is delivered as a message of its own, not as a batch.
    for (const d of [...a.delivered, ...b.delivered]) expect(Array.isArray(d.message)).toBe(false);
  });

  it('expel() answers its requests in flight with close.answer, detaches it with close, drops the rest', () => {
    const { mux, relay, peers } = setup();
    const [a, b] = peers as [FakePeer, FakePeer];
    a.send(req('r1', 'tools/call'));
    a.send(req(2, 'tools/call'));
    b.send(req('r1', 'tools/call'));
    const close: RelayPeerClose = {
      code: 4003,
      reason: 'capability revoked',
      answer: { message: 'mcp-box: capability revoked', data: { phase: 'runtime', code: 'RELAY_DROPPED' } },
    };
    expect(mux.expel(a, close)).toBe(true);
    const error = { code: RELAY_ERROR_CODE, message: 'mcp-box: capability revoked', data: close.answer?.data };
    expect(a.answers).toStrictEqual([
      { jsonrpc: '2.0', id: 'r1', error },
      { jsonrpc: '2.0', id: 2, error },
    ]);
    expect(a.detaches).toStrictEqual([close]);
    expect(b.inbox).toEqual([]);
    expect(b.detaches).toEqual([]);
    expect(mux.size).toBe(1);
    fromProcess(mux, ok(relay.written[0]?.id, {}));
    expect(a.got).toEqual([]);
    expect(mux.expel(a, close)).toBe(false);
    expect(mux.expel(new FakePeer('stranger'), close)).toBe(false);
    expect(a.detaches).toHaveLength(1);
    fromProcess(mux, ok(relay.written[2]?.id, {}));
    expect(b.got).toStrictEqual([ok('r1', {})]);
  });

  it("passes the members' rejected() and event() to the relay", () => {
    const { relay, peers } = setup();
    const [a] = peers as [FakePeer];
    a.link?.rejected();
    a.link?.event('client a missed its heartbeat');
    expect(relay.rejectedCount).toBe(1);
    expect(relay.events).toContain('client a missed its heartbeat');
    expect(relay.leftCount).toBe(0);
  });
});
