/**
 * Exactly one answer under faults: 50 tool calls in flight through a real `serve` — 25 REST calls
 * (the supervisor's own client) and 25 JSON-RPC requests of an external client on the WebSocket
 * relay — when the session container is killed. Each gets one answer, a result or an error that
 * carries phase and code, within 5 s; none hangs; none is answered twice.
 */
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { WebSocket } from 'ws';
import { copyFixture, type TempFolder } from '../helpers/folders.js';
import { docker, eventually } from '../helpers/runtime.js';
import { HOST_CA_BUNDLE, npmRegistry } from '../helpers/supervisor.js';
import { serveApi, type ServeProcess, startServeProcess, stopAllServes } from '../helpers/serve-process.js';

const PER_CLIENT = 25;
const ANSWER_WITHIN_MS = 5000;

describe('exactly one answer per request when the session dies', () => {
  let folder: TempFolder;
  let serve: ServeProcess;
  let token: string;
  const api = serveApi(
    () => serve.url,
    () => token,
  );

  beforeAll(async () => {
    folder = copyFixture('node-mcp');
    const configPath = `${folder.path}/../mcp-box.json`;
    // each server stages its own folder: two never share one
    cpSync(folder.path, `${folder.path}/../project-ext`, { recursive: true });
    const server = { command: 'node', args: ['server.mjs'] };
    writeFileSync(
      configPath,
      JSON.stringify({
        mcpServers: {
          rest: { ...server, box: { hostPath: 'project' } },
          ext: { ...server, box: { hostPath: 'project-ext', client: 'external' } },
        },
        box: {
          image: inject('sandboxImage'),
          memoryMb: 1024,
          allowedRoots: [tmpdir()],
          caCertsFile: HOST_CA_BUNDLE,
          install: { npmRegistry: npmRegistry() },
          restart: { backoffInitialMs: 200, maxRestarts: 3 },
        },
        server: { port: 0 },
      }),
    );
    serve = await startServeProcess(configPath);
    token = readFileSync(`${folder.path}/../.mcp-box/token`, 'utf8').trim();
    await eventually(
      async () => {
        const { json } = await api('GET', '/v1/servers');
        const servers = json.servers as { state: string }[];
        return servers.length === 2 && servers.every((s) => s.state === 'ready') ? true : undefined;
      },
      180_000,
      200,
    );
  }, 240_000);
  afterAll(async () => {
    await stopAllServes();
    folder.cleanup();
  });

  it('answers each of 50 calls in flight once when the container is killed', async () => {
    const ext = (await api('GET', '/v1/servers/ext')).json as { relay: { url: string }; session: string };
    const ws = new WebSocket(ext.relay.url, 'mcp', { headers: { Authorization: `Bearer ${token}` } });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const answers = new Map<string, unknown[]>();
    ws.on('message', (data: Buffer) => {
      const m = JSON.parse(data.toString('utf8')) as { id?: string | number };
      if (m.id !== undefined) answers.set(String(m.id), [...(answers.get(String(m.id)) ?? []), m]);
    });
    const send = (m: unknown): void => ws.send(JSON.stringify(m));
    send({
      jsonrpc: '2.0',
      id: 'init',
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'faults', version: '1' } },
    });
    await eventually(() => (answers.has('init') ? true : undefined), 15_000);
    send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    // String and number ids alike; every call blocks far longer than the test.
    const relayIds = Array.from({ length: PER_CLIENT }, (_, i) => (i % 2 === 0 ? i + 1 : `call-${i + 1}`));
    for (const id of relayIds)
      send({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'sleep', arguments: { ms: 120_000 } } });

    const rest = Array.from({ length: PER_CLIENT }, () =>
      api('POST', '/v1/servers/rest/tools/sleep/call', { arguments: { ms: 120_000 }, timeoutMs: 120_000 }).then(
        (r) => ({ ...r, at: Date.now() }),
        (err: unknown) => ({ status: 0, json: { transport: String(err) } as Record<string, unknown>, at: Date.now() }),
      ),
    );
    // Every call is in the servers' hands before the kill.
    await new Promise((r) => setTimeout(r, 1000));
    const killedAt = Date.now();
    await docker.getContainer(ext.session).kill();

    const restAnswers = await Promise.all(rest);
    await eventually(() => (relayIds.every((id) => answers.has(String(id))) ? true : undefined), ANSWER_WITHIN_MS, 20);
    const relayAnsweredMs = Date.now() - killedAt;
    // Anything answered twice would have arrived by now.
    await new Promise((r) => setTimeout(r, 1000));
    ws.terminate();

    const restAnsweredMs = Math.max(...restAnswers.map((r) => r.at)) - killedAt;
    for (const r of restAnswers) {
      expect(r.status).toBeGreaterThanOrEqual(400);
      expect(r.json.error).toMatchObject({ phase: 'runtime', code: 'CONTAINER_DIED' });
    }
    // The deadline of the contract (BRIEF §4): an answer within 5 s, not a measure of speed.
    expect(restAnsweredMs).toBeLessThan(ANSWER_WITHIN_MS);
    expect(relayAnsweredMs).toBeLessThan(ANSWER_WITHIN_MS);
    for (const id of relayIds) {
      const got = answers.get(String(id)) ?? [];
      expect(got, `answers to ${JSON.stringify(id)}`).toHaveLength(1);
      const answer = got[0] as { id: unknown; error?: { data?: { phase?: string; code?: string } } };
      expect(answer.id).toEqual(id);
      expect(answer.error?.data).toMatchObject({ phase: 'runtime', code: 'CONTAINER_DIED' });
    }
    console.log(
      `[faults] 50 calls in flight at a kill: REST answered within ${restAnsweredMs} ms of the kill, ` +
        `relay within ${relayAnsweredMs} ms`,
    );

    // And both servers come back.
    await eventually(
      async () => {
        const servers = (await api('GET', '/v1/servers')).json.servers as { state: string }[];
        return servers.every((s) => s.state === 'ready') ? true : undefined;
      },
      60_000,
      200,
    );
    expect((await api('POST', '/v1/servers/rest/tools/add/call', { arguments: { a: 1, b: 2 } })).json).toMatchObject({
      content: [{ text: '3' }],
    });
  });
});
