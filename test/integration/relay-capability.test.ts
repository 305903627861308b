/**
 * Relay URLs that work without headers: each running process has a capability URL of its own, which a client that
 * sends no headers (Python's `websockets`, as the Python SDK's websocket_client uses) connects to as it is; revoking
 * it or restarting the process ends it, and it never appears in a log line.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Supervisor } from '../../src/supervisor/supervisor.js';
import { testConfig, testSupervisor, waitForState } from '../helpers/supervisor.js';

const run = promisify(execFile);
const CLIENT = new URL('../fixtures/clients/no-header-client.py', import.meta.url).pathname;

/** A stdlib MCP server: initialize, tools/list, tools/call add. */
const SERVER = `import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if "id" not in m: continue
    r = {"jsonrpc": "2.0", "id": m["id"]}
    if m["method"] == "initialize":
        r["result"] = {"protocolVersion": m["params"]["protocolVersion"], "capabilities": {"tools": {}},
                       "serverInfo": {"name": "stdlib-add", "version": "1"}}
    elif m["method"] == "tools/list":
        r["result"] = {"tools": [{"name": "add", "inputSchema": {"type": "object"}}]}
    elif m["method"] == "tools/call":
        a = m["params"]["arguments"]
        r["result"] = {"content": [{"type": "text", "text": str(a["a"] + a["b"])}]}
    else:
        r["error"] = {"code": -32601, "message": "no method"}
    print(json.dumps(r), flush=True)
`;

interface ClientResult {
  ok: boolean;
  status?: number | null;
  error?: string;
  server?: string;
  tools?: string[];
  sum?: string;
  subprotocol?: string;
}

async function connect(url: string): Promise<ClientResult> {
  const { stdout } = await run('/usr/bin/python3', [CLIENT, url], { timeout: 60_000 });
  return JSON.parse(stdout) as ClientResult;
}

describe('relay capability URLs', () => {
  let sup: Supervisor;
  const relayUrl = (): string => sup.get('adder').relay?.url ?? '';

  beforeAll(async () => {
    sup = await testSupervisor(testConfig({ pingIntervalSec: 0 }));
    sup.add('adder', { command: 'python3', args: ['-u', '-c', SERVER], box: { client: 'external' } });
    await waitForState(sup, 'adder', ['ready']);
  });
  afterAll(async () => {
    await sup.close();
  });

  it('is in the server record: a capability path, never the API token', () => {
    const url = relayUrl();
    expect(url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/v1\/relay\/[A-Za-z0-9_-]{43}$/);
    expect(url).not.toContain(sup.token);
    expect(sup.get('adder').relay?.subprotocol).toBe('mcp');
  });

  it('lets a client that sends no headers initialize, list and call, with the URL alone', async () => {
    const result = await connect(relayUrl());
    expect(result).toEqual({ ok: true, server: 'stdlib-add', tools: ['add'], sum: '42', subprotocol: 'mcp' });
  });

  it('refuses a capability it never gave, with a 404 that does not echo it', async () => {
    const forged = relayUrl().replace(/[A-Za-z0-9_-]{43}$/, 'A'.repeat(43));
    const result = await connect(forged);
    expect(result).toMatchObject({ ok: false, status: 404 });
    // Without a capability or a token, the header route stays closed.
    const session = sup.get('adder').session ?? '';
    const byHeader = `${relayUrl().replace(/\/v1\/relay\/.*$/, '')}/v1/sessions/${session}/processes/adder/ws`;
    expect(await connect(byHeader)).toMatchObject({ ok: false, status: 401 });
  });

  it('ends with a revoke (the old URL refused, the new one works) and with a restart of the process', async () => {
    const before = relayUrl();
    const after = sup.revokeRelay('adder').relay?.url ?? '';
    expect(after).not.toBe(before);
    expect(await connect(before)).toMatchObject({ ok: false, status: 404 });
    expect(await connect(after)).toMatchObject({ ok: true, sum: '42' });
    await sup.restart('adder');
    await waitForState(sup, 'adder', ['ready']);
    expect(relayUrl()).not.toBe(after);
    expect(await connect(after)).toMatchObject({ ok: false, status: 404 });
    expect(await connect(relayUrl())).toMatchObject({ ok: true, sum: '42' });
  });

  it('redacts a relay URL that reaches a server log (a server printing what it was given)', async () => {
    const url = relayUrl();
    const cap = url.slice(-43);
    sup.add('echoer', {
      command: 'python3',
      args: [
        '-c',
        'import sys, time\nprint("relay at", sys.argv[1], file=sys.stderr, flush=True)\ntime.sleep(60)',
        url,
      ],
      box: { client: 'external' },
    });
    await waitForState(sup, 'echoer', ['ready']);
    const text = async (): Promise<string> =>
      sup
        .logs('echoer', 0, 10_000)
        .lines.map((l) => l.text)
        .join('\n');
    await expect.poll(text, { timeout: 20_000 }).toContain('relay at ws://');
    expect(await text()).toContain('/v1/relay/[capability]');
    expect(await text()).not.toContain(cap);
    await sup.remove('echoer');
  });
});
