import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Supervisor } from '../../src/supervisor/supervisor.js';
import { testConfig, testSupervisor, waitForState } from '../helpers/supervisor.js';

/** The reference server, fetched by `npx -y` inside the sandbox (npm reachable through caCertsFile). */
describe('npx -y @modelcontextprotocol/server-everything in the sandbox', () => {
  let sup: Supervisor;

  beforeAll(async () => {
    sup = await testSupervisor(testConfig({ startupTimeoutSec: 240 }));
    sup.add('everything', { command: 'npx', args: ['-y', '@modelcontextprotocol/server-everything'] });
    const view = await waitForState(sup, 'everything', ['ready', 'failed'], 300_000);
    if (view.state !== 'ready') throw new Error(`server-everything did not start: ${JSON.stringify(view.error)}`);
  }, 320_000);
  afterAll(async () => {
    await sup.close();
  });

  it('lists its tools and answers echo and get-sum', async () => {
    const names = (await sup.listTools('everything')).map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(['echo', 'get-sum', 'trigger-long-running-operation']));
    expect(await sup.callTool('everything', 'echo', { message: 'hello from the sandbox' })).toMatchObject({
      content: [{ type: 'text', text: 'Echo: hello from the sandbox' }],
    });
    expect(await sup.callTool('everything', 'get-sum', { a: 19, b: 23 })).toMatchObject({
      content: [{ type: 'text', text: expect.stringContaining('42') as unknown }],
    });
  });

  it('returns a multi-megabyte result intact', async () => {
    const message = '箱✓mcp-box '.repeat(400_000); // ~4.4 MB of UTF-8 each way
    const result = await sup.callTool('everything', 'echo', { message });
    const text = (result.content as { text: string }[])[0]?.text;
    expect(text === `Echo: ${message}`).toBe(true);
  });

  it('delivers progress notifications', async () => {
    const client = sup.get('everything').client;
    const seen: number[] = [];
    const result = await client?.callTool(
      { name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 4 } },
      undefined,
      { onprogress: (p) => seen.push(p.progress) },
    );
    expect(result?.content).toEqual([
      expect.objectContaining({ text: expect.stringContaining('Long running operation completed') as unknown }),
    ]);
    // Progress arrives as the server sends it (250 ms apart). The SDK client settles the response
    // before dispatching a notification that lands in the same read, so the last one may be
    // missing here; relay.test.ts shows every progress frame crossing the relay, in order.
    expect(seen.slice(0, 3)).toEqual([1, 2, 3]);
  });
});
