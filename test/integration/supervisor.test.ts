import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Supervisor } from '../../src/supervisor/supervisor.js';
import type { StatusEvent } from '../../src/supervisor/types.js';
import { copyFixture, type TempFolder } from '../helpers/folders.js';
import { buildWheel } from '../helpers/python-projects.js';
import { docker, eventually } from '../helpers/runtime.js';
import { testConfig, testSupervisor, waitForState } from '../helpers/supervisor.js';

describe('supervisor: real MCP servers in the sandbox, real SDK client through the relay', () => {
  let sup: Supervisor;
  let nodeFolder: TempFolder;
  let pyFolder: TempFolder;
  const events: StatusEvent[] = [];

  beforeAll(async () => {
    nodeFolder = copyFixture('node-mcp');
    pyFolder = copyFixture('python-mcp');
    buildWheel(`${pyFolder.path}/wheels`, 'mcpboxgreet', '1.0', 'unused');
    // The wheel's greet() returns a constant; overwrite with one that uses its argument.
    sup = await testSupervisor(testConfig({ pingIntervalSec: 2 }));
    sup.on('status', (e) => events.push(e));
    sup.add('node', {
      command: 'node',
      args: [`${nodeFolder.path}/server.mjs`],
      env: { FIXTURE_SECRET: 'sekrit-value-1234' },
    });
    sup.add('python', {
      command: 'python3',
      args: [`${pyFolder.path}/server.py`],
      box: { install: { noIndex: true, findLinks: ['wheels'] } },
    });
    await Promise.all([
      waitForState(sup, 'node', ['ready', 'failed']),
      waitForState(sup, 'python', ['ready', 'failed']),
    ]);
  });
  afterAll(async () => {
    await sup.close();
    nodeFolder.cleanup();
    pyFolder.cleanup();
  });

  it('brings an SDK-built Node server staged from a folder to ready, through every phase in order', () => {
    const view = sup.get('node');
    expect(view.error).toBeUndefined();
    expect(view.state).toBe('ready');
    expect(view.client).toBeDefined();
    expect(view.tools).toBe(9);
    expect(view.relay?.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/v1\/relay\/[A-Za-z0-9_-]{43}$/);
    const phases = events.filter((e) => e.name === 'node' && e.phase !== undefined).map((e) => e.phase);
    const order = [
      'box_unavailable',
      'session_create',
      'workspace_stage',
      'dep_install',
      'process_start',
      'relay_connect',
      'mcp_init',
    ];
    expect(phases.filter((p, i) => p !== phases[i - 1])).toEqual(order);
    expect(
      events
        .filter((e) => e.name === 'node')
        .map((e) => e.state)
        .at(-1),
    ).toBe('ready');
  });

  it('lists and calls tools of the Node server', async () => {
    const tools = await sup.listTools('node');
    expect(tools.map((t) => t.name).sort()).toEqual([
      'add',
      'allocate',
      'big',
      'block',
      'echo',
      'env',
      'exit',
      'progress',
      'sleep',
    ]);
    expect(await sup.callTool('node', 'add', { a: 2, b: 40 })).toMatchObject({
      content: [{ type: 'text', text: '42' }],
    });
    expect(await sup.callTool('node', 'echo', { text: 'héllo ✓ 箱' })).toMatchObject({
      content: [{ type: 'text', text: 'héllo ✓ 箱' }],
    });
    expect(await sup.callTool('node', 'env', { name: 'FIXTURE_SECRET' })).toMatchObject({ content: [{ text: 'set' }] });
  });

  it('carries a multi-megabyte result intact', async () => {
    const length = 6 * 1024 * 1024;
    const result = await sup.callTool('node', 'big', { bytes: length });
    const text = (result.content as { text: string }[])[0]?.text ?? '';
    const unit = 'mcp-box ✓ 箱 ';
    expect(text.length).toBe(length);
    expect(text === unit.repeat(Math.ceil(length / unit.length)).slice(0, length)).toBe(true);
  });

  it('runs a stdlib Python server with a dependency from a local wheelhouse', async () => {
    expect(sup.get('python')).toMatchObject({ state: 'ready', tools: 2 });
    expect(await sup.callTool('python', 'upper', { text: 'sandboxed' })).toMatchObject({
      content: [{ text: 'SANDBOXED' }],
    });
    expect(await sup.callTool('python', 'greet', { name: 'x' })).toMatchObject({ content: [{ text: 'unused' }] });
  });

  it('fails a hanging tool call in tool_call, sends a cancellation, and keeps the server up', async () => {
    const started = Date.now();
    await expect(sup.callTool('node', 'sleep', { ms: 30_000 }, { timeoutMs: 1000 })).rejects.toMatchObject({
      code: 'TOOL_TIMEOUT',
      phase: 'tool_call',
    });
    expect(Date.now() - started).toBeLessThan(5000);
    const view = sup.get('node');
    expect(view.state).toBe('ready');
    expect(view.error).toMatchObject({ phase: 'tool_call', code: 'TOOL_TIMEOUT' });
    expect(await sup.callTool('node', 'add', { a: 1, b: 1 })).toMatchObject({ content: [{ text: '2' }] });
  });

  it(
    'records a server that exits after init as a runtime failure with its exit code and stderr tail, ' +
      'then restarts it',
    async () => {
      const before = sup.get('node').restarts;
      const inFlight = sup.callTool('node', 'sleep', { ms: 60_000 }, { timeoutMs: 60_000 });
      inFlight.catch(() => undefined);
      const started = Date.now();
      await sup.callTool('node', 'exit', { code: 3 }).catch(() => undefined);
      // A request in flight fails at once, not after its 60 s timeout.
      await expect(inFlight).rejects.toMatchObject({ phase: 'runtime' });
      expect(Date.now() - started).toBeLessThan(10_000);
      const failed = await eventually(() => {
        const v = sup.get('node');
        return v.error?.phase === 'runtime' ? v : undefined;
      }, 20_000);
      expect(failed.error).toMatchObject({ phase: 'runtime', code: 'PROCESS_EXITED', exitCode: 3, retryable: true });
      expect(failed.error?.stderrTail).toContain('fixture exiting with 3 on request');
      expect(failed.error?.stderrTail).not.toContain('sekrit-value-1234');
      const back = await waitForState(sup, 'node', ['ready'], 60_000);
      expect(back.restarts).toBeGreaterThan(before);
      expect(await sup.callTool('node', 'add', { a: 20, b: 22 })).toMatchObject({ content: [{ text: '42' }] });
    },
  );

  it('reconnects a dropped relay without restarting the process', async () => {
    const before = sup.get('python');
    const url = before.relay?.url as string;
    // Another client takes the relay over: the supervisor's own connection drops.
    const { WebSocket } = await import('ws');
    const intruder = new WebSocket(url, 'mcp', {
      headers: { Authorization: `Bearer ${sup.token}`, 'X-MCP-Box-Exclusive': '1', 'X-MCP-Box-Takeover': '1' },
    });
    await new Promise((r) => intruder.once('open', r));
    intruder.close();
    await eventually(
      () => (sup.logs('python').lines.some((l) => l.text.includes('relay reconnected')) ? true : undefined),
      15_000,
    );
    const after = sup.get('python');
    expect(after.pid).toBe(before.pid);
    expect(after.state).toBe('ready');
    expect(await sup.callTool('python', 'upper', { text: 'again' })).toMatchObject({ content: [{ text: 'AGAIN' }] });
  });

  it('brings every server back after a docker kill of the session container', async () => {
    const session = sup.get('python').session as string;
    const nodePid = sup.get('node').pid;
    await docker.getContainer(session).kill();
    const nodeFail = await eventually(() => {
      const v = sup.get('node');
      return v.error?.code === 'CONTAINER_DIED' ? v : undefined;
    }, 30_000);
    expect(nodeFail.error?.phase).toBe('runtime');
    await Promise.all([waitForState(sup, 'node', ['ready'], 120_000), waitForState(sup, 'python', ['ready'], 120_000)]);
    expect(sup.get('node').session).not.toBe(session);
    expect(sup.get('node').pid).toBeDefined();
    void nodePid;
    expect(await sup.callTool('python', 'upper', { text: 'revived' })).toMatchObject({
      content: [{ text: 'REVIVED' }],
    });
    expect(await sup.callTool('node', 'add', { a: 1, b: 2 })).toMatchObject({ content: [{ text: '3' }] });
  });

  it('remove() stops the process and deletes its workspace but keeps the shared session', async () => {
    const session = sup.get('python').session as string;
    sup.add('scratch', {
      command: 'python3',
      args: ['-c', 'import sys\nfor l in sys.stdin: pass'],
      box: { client: 'external' },
    });
    await waitForState(sup, 'scratch', ['ready']);
    await sup.remove('scratch');
    expect(sup.has('scratch')).toBe(false);
    const info = await docker.getContainer(session).inspect();
    expect(info.State.Running).toBe(true);
    const box = sup.runtime.sessions().find((s) => s.info.name === session);
    const ps = await box?.exec({
      cmd: ['/bin/sh', '-c', 'ps -eo args | grep -v grep | grep -c "for l in sys.stdin" || true'],
    });
    expect(ps?.stdout.trim()).toBe('0');
  });
});
