import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Supervisor } from '../../src/supervisor/supervisor.js';
import { copyFixture, type TempFolder } from '../helpers/folders.js';
import { eventually } from '../helpers/runtime.js';
import { testConfig, testSupervisor, waitForState } from '../helpers/supervisor.js';
import { connectRaw, refusedStatus, type RawClient } from '../helpers/ws-client.js';

const MiB = 1024 * 1024;
const external = { client: 'external' };

describe('stdio relay over WebSocket (external client mode)', () => {
  let sup: Supervisor;
  let nodeFolder: TempFolder;
  const url = (name: string): string => sup.get(name).relay?.url as string;
  /** The route that takes the API token instead of a capability. */
  const headerUrl = (name: string): string =>
    `${url(name).replace(/\/v1\/relay\/.*$/, '')}/v1/sessions/${sup.get(name).session}/processes/${name}/ws`;
  /** A client alone (the raw relay: lines byte-exact, one client at a time); shared clients are in shared-clients. */
  const connect = (name: string, extra: { takeover?: boolean } = {}): Promise<RawClient> =>
    connectRaw(url(name), { token: sup.token, exclusive: true, ...extra });

  beforeAll(async () => {
    nodeFolder = copyFixture('node-mcp');
    sup = await testSupervisor(testConfig());
    sup.add('echo', { command: 'cat', box: external });
    sup.add('delayed', {
      command: 'sh',
      args: ['-c', 'while IFS= read -r l; do sleep 0.5; printf "%s\\n" "$l"; done'],
      box: external,
    });
    sup.add('noisy', {
      command: 'sh',
      args: [
        '-c',
        'echo "a banner that is not JSON"; printf "%s\\n" "{\\"jsonrpc\\":\\"2.0\\",\\"method\\":\\"hello\\"}"; cat',
      ],
      box: external,
    });
    sup.add('huge', {
      command: 'sh',
      args: ['-c', 'IFS= read -r l; head -c 17000000 /dev/zero | tr "\\0" x; echo; printf "%s\\n" "$l"; cat'],
      box: external,
    });
    sup.add('node', { command: 'node', args: [`${nodeFolder.path}/server.mjs`], box: external });
    await Promise.all(['echo', 'delayed', 'noisy', 'huge', 'node'].map((n) => waitForState(sup, n, ['ready'])));
  });
  afterAll(async () => {
    await sup.close();
    nodeFolder.cleanup();
  });

  it('shows the relay URL in the server record even though nobody is attached', () => {
    expect(sup.get('echo')).toMatchObject({ state: 'ready', clientMode: 'external', relay: { subprotocol: 'mcp' } });
    expect(sup.get('echo').client).toBeUndefined();
  });

  it('carries a 16 MiB message both directions byte-exact', async () => {
    const c = await connect('echo');
    // Exactly 16 MiB on the wire: 1-, 3- and 3-byte characters, so 64 KiB chunk ends fall inside characters.
    const envelopeBytes = Buffer.byteLength(JSON.stringify({ jsonrpc: '2.0', method: 'big', params: { data: '' } }));
    const pattern = 'ab✓箱€';
    const patternBytes = Buffer.byteLength(pattern);
    const dataBytes = 16 * MiB - envelopeBytes;
    const data = pattern.repeat(Math.floor(dataBytes / patternBytes)) + 'a'.repeat(dataBytes % patternBytes);
    const trimmed = JSON.stringify({ jsonrpc: '2.0', method: 'big', params: { data } });
    expect(Buffer.byteLength(trimmed)).toBe(16 * MiB);
    c.ws.send(trimmed);
    const back = await c.next(60_000);
    expect(Buffer.byteLength(back)).toBe(Buffer.byteLength(trimmed));
    expect(back === trimmed).toBe(true);
    c.ws.close();
    await c.closed;
  });

  it('delivers 10,000 back-to-back messages, none lost and in order', async () => {
    const c = await connect('echo');
    for (let i = 0; i < 10_000; i++) c.ws.send(JSON.stringify({ jsonrpc: '2.0', id: i, method: 'n', params: { i } }));
    await eventually(() => (c.frames.length >= 10_000 ? true : undefined), 60_000);
    expect(c.frames.length).toBe(10_000);
    expect(c.frames.every((f, i) => (JSON.parse(f) as { id: number }).id === i)).toBe(true);
    c.ws.close();
    await c.closed;
  });

  it('keeps multibyte UTF-8 split across chunk boundaries intact', async () => {
    const c = await connect('echo');
    const text = '🙂ü箱'.repeat(50_000); // ~450 KB: many 64 KiB chunk boundaries fall inside characters
    c.ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'utf8', params: { text } }));
    const back = JSON.parse(await c.next(30_000)) as { params: { text: string } };
    expect(back.params.text === text).toBe(true);
    expect(back.params.text).not.toContain('\uFFFD');
    c.ws.close();
    await c.closed;
  });

  it('answers bad client frames with JSON-RPC errors; they never reach stdin', async () => {
    const c = await connect('echo');
    c.ws.send('this is not json');
    expect(JSON.parse(await c.next())).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32700 } });
    c.ws.send(JSON.stringify({ id: 5, method: 'x' }));
    expect(JSON.parse(await c.next())).toMatchObject({ id: 5, error: { code: -32600 } });
    c.ws.send(Buffer.from('{"jsonrpc":"2.0","method":"bin"}'), { binary: true });
    expect(JSON.parse(await c.next())).toMatchObject({
      error: { code: -32600, message: expect.stringContaining('binary') as unknown },
    });
    // A frame whose string holds a newline is re-serialised to one line: cat echoes exactly one message.
    c.ws.send(
      JSON.stringify({
        jsonrpc: '2.0',
        method: 'inject',
        params: { s: 'line1\n{"jsonrpc":"2.0","method":"smuggled"}' },
      }),
    );
    const echoed = JSON.parse(await c.next()) as { method: string };
    expect(echoed.method).toBe('inject');
    await new Promise((r) => setTimeout(r, 300));
    expect(c.frames.length).toBe(4);
    c.ws.close();
    await c.closed;
  });

  it('does not forward non-JSON stdout lines; it counts and logs them', async () => {
    const c = await connect('noisy');
    expect(JSON.parse(await c.next())).toMatchObject({ method: 'hello' });
    expect(sup.logs('noisy').lines.some((l) => l.source === 'stdout' && l.text === 'a banner that is not JSON')).toBe(
      true,
    );
    c.ws.close();
    await c.closed;
  });

  it('closes with 1009 and a reason on an over-limit line, and goes on after it', async () => {
    const c = await connect('huge');
    c.ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'after' }));
    const closed = await c.closed;
    expect(closed.code).toBe(1009);
    expect(closed.reason).toMatch(/exceeded 16777216 bytes/);
    const again = await connect('huge');
    expect(JSON.parse(await again.next(30_000))).toMatchObject({ method: 'after' });
    again.ws.close();
    await again.closed;
  });

  it('refuses a second client, lets one take over, and delivers what was written while detached', async () => {
    const first = await connect('delayed');
    const second = await connect('delayed');
    expect(await second.closed).toMatchObject({ code: 4409, reason: expect.stringContaining('takeover') as unknown });
    const third = await connect('delayed', { takeover: true });
    expect(await first.closed).toMatchObject({ code: 4001 });
    third.ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'while-detached' }));
    third.ws.close(); // gone before the process answers (it waits 0.5 s)
    await third.closed;
    await new Promise((r) => setTimeout(r, 1000));
    const fourth = await connect('delayed');
    expect(JSON.parse(await fourth.next())).toMatchObject({ id: 1, method: 'while-detached' });
    fourth.ws.close();
    await fourth.closed;
    expect(sup.get('delayed').state).toBe('ready'); // the process kept running throughout
  });

  it('relays a real SDK server: every progress notification arrives as its own frame', async () => {
    const c = await connect('node');
    c.ws.send(
      JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
      }),
    );
    expect(JSON.parse(await c.next(30_000))).toMatchObject({ id: 1, result: { serverInfo: { name: 'fixture-node' } } });
    c.ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
    c.ws.send(
      JSON.stringify({
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'progress', arguments: { steps: 5 }, _meta: { progressToken: 'p' } },
      }),
    );
    const frames = [];
    for (let i = 0; i < 6; i++)
      frames.push(JSON.parse(await c.next()) as { method?: string; params?: { progress: number }; id?: number });
    expect(frames.slice(0, 5).map((f) => [f.method, f.params?.progress])).toEqual(
      [1, 2, 3, 4, 5].map((n) => ['notifications/progress', n]),
    );
    expect(frames[5]).toMatchObject({ id: 2, result: { content: [{ text: 'done 5' }] } });
    c.ws.close();
    await c.closed;
  });

  it(
    'checks the token before the upgrade, in the header ' + 'only, and refuses browser Origins and foreign Hosts',
    async () => {
      const u = headerUrl('echo');
      expect(await refusedStatus(u, {})).toBe(401);
      expect(await refusedStatus(u, { token: 'wrong-token-wrong-token' })).toBe(401);
      expect(await refusedStatus(`${u}?token=${sup.token}`, {})).toBe(401);
      expect(await refusedStatus(u, { token: sup.token, headers: { Origin: 'https://evil.example' } })).toBe(403);
      expect(await refusedStatus(u, { token: sup.token, headers: { Host: 'attacker.example:80' } })).toBe(403);
      expect(await refusedStatus(u.replace('/processes/echo/', '/processes/nope/'), { token: sup.token })).toBe(404);
      // The capability URL needs no token, but the Origin and Host rules hold for it as well.
      expect(await refusedStatus(url('echo'), { headers: { Origin: 'https://evil.example' } })).toBe(403);
      expect(await refusedStatus(url('echo'), { headers: { Host: 'attacker.example:80' } })).toBe(403);
    },
  );
});
