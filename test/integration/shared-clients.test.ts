/**
 * Many clients, one process: two WebSocket clients (sharing is the default) and the supervisor's own client
 * use one sandboxed server at once, against the real engine. Ids collide across clients (numbers and strings), the
 * process sees one initialize, progress goes to the client whose token it carries, list_changed to all, and a
 * request of the server goes to the one client with a call in flight.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLOSE_ALREADY_ATTACHED } from '../../src/relay/close-codes.js';
import type { Supervisor } from '../../src/supervisor/supervisor.js';
import { testConfig, testSupervisor, waitForState } from '../helpers/supervisor.js';
import { toolsServer } from '../helpers/tools-server.js';
import { connectRaw, type RawClient } from '../helpers/ws-client.js';

/** A plain JSON-RPC client on a raw WebSocket: requests by id, notifications and server requests kept. */
class Rpc {
  readonly seen: Record<string, unknown>[] = [];
  constructor(readonly raw: RawClient) {
    raw.ws.on('message', (data: Buffer) =>
      this.seen.push(JSON.parse(data.toString('utf8')) as Record<string, unknown>),
    );
  }
  send(m: Record<string, unknown>): void {
    this.raw.ws.send(JSON.stringify({ jsonrpc: '2.0', ...m }));
  }
  async answer(id: unknown, timeoutMs = 15_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.seen.find((m) => m.id === id && m.method === undefined);
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`no answer to ${JSON.stringify(id)}: ${JSON.stringify(this.seen)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  async initialize(): Promise<void> {
    this.send({
      id: 'init',
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: { roots: {} }, clientInfo: { name: 't', version: '1' } },
    });
    expect(await this.answer('init')).toMatchObject({ result: { serverInfo: { name: 'shared' } } });
    this.send({ method: 'notifications/initialized' });
  }
  call(id: unknown, name: string, args: Record<string, unknown> = {}, meta?: Record<string, unknown>): void {
    this.send({
      id,
      method: 'tools/call',
      params: { name, arguments: args, ...(meta === undefined ? {} : { _meta: meta }) },
    });
  }
  textOf(answer: Record<string, unknown>): string {
    return (answer.result as { content: { text: string }[] }).content[0]?.text ?? '';
  }
}

describe('many clients share one process', () => {
  let sup: Supervisor;
  let a: Rpc;
  let b: Rpc;
  const shareUrl = (): string => sup.get('shared').relay?.url ?? '';

  beforeAll(async () => {
    sup = await testSupervisor(testConfig({ pingIntervalSec: 0 }));
    sup.add('shared', toolsServer('shared'));
    await waitForState(sup, 'shared', ['ready']);
    a = new Rpc(await connectRaw(shareUrl()));
    b = new Rpc(await connectRaw(shareUrl()));
    await a.initialize();
    await b.initialize();
  });
  afterAll(async () => {
    a?.raw.ws.close();
    b?.raw.ws.close();
    await sup.close();
  });

  it('reaches the process with one initialize, whoever initializes after the first', async () => {
    a.call(1, 'inits');
    expect(a.textOf(await a.answer(1))).toBe('1');
  });

  it('keeps colliding ids apart and restores each exactly (numbers, strings), the supervisor calling too', async () => {
    a.call(7, 'add', { a: 1, b: 1 });
    b.call(7, 'add', { a: 2, b: 2 });
    b.call('7', 'add', { a: 3, b: 3 });
    const library = sup.callTool('shared', 'add', { a: 4, b: 4 });
    expect(a.textOf(await a.answer(7))).toBe('2');
    expect(b.textOf(await b.answer(7))).toBe('4');
    expect(b.textOf(await b.answer('7'))).toBe('6');
    expect(await library).toMatchObject({ content: [{ text: '8' }] });
    // Each got only its own answers.
    expect(a.seen.filter((m) => m.id === '7')).toEqual([]);
    expect(b.seen.filter((m) => m.id === 7)).toHaveLength(1);
  });

  it('sends progress to the client whose token it carries, with that token', async () => {
    b.call('p-call', 'slow', {}, { progressToken: 'tok' });
    a.call('p-call', 'slow', {}, { progressToken: 99 });
    await b.answer('p-call');
    await a.answer('p-call');
    const progress = (c: Rpc): unknown[] =>
      c.seen
        .filter((m) => m.method === 'notifications/progress')
        .map((m) => (m.params as { progressToken: unknown }).progressToken);
    expect(progress(b)).toEqual(['tok', 'tok', 'tok']);
    expect(progress(a)).toEqual([99, 99, 99]);
  });

  it('fans list_changed out to every client', async () => {
    b.call('c1', 'change');
    await b.answer('c1');
    const changed = (c: Rpc): number => c.seen.filter((m) => m.method === 'notifications/tools/list_changed').length;
    await expect.poll(() => changed(a), { timeout: 10_000 }).toBe(1);
    expect(changed(b)).toBe(1);
  });

  it('routes a request of the server to the one client with a call in flight, and its answer back', async () => {
    a.call('ask-1', 'ask');
    await expect.poll(() => a.seen.some((m) => m.method === 'roots/list'), { timeout: 10_000 }).toBe(true);
    const request = a.seen.find((m) => m.method === 'roots/list') as Record<string, unknown>;
    expect(b.seen.some((m) => m.method === 'roots/list')).toBe(false);
    a.send({ id: request.id, result: { roots: [{ uri: 'file:///work', name: 'work' }] } });
    expect(a.textOf(await a.answer('ask-1'))).toContain('file:///work');
  });

  it('refuses a client that asks to hold the process alone while others share it', async () => {
    const alone = await connectRaw(`${sup.get('shared').relay?.url ?? ''}?exclusive=1`);
    expect((await alone.closed).code).toBe(CLOSE_ALREADY_ATTACHED);
    expect(await sup.callTool('shared', 'add', { a: 20, b: 22 })).toMatchObject({ content: [{ text: '42' }] });
  });
});
