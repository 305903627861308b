import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { copyFixture, type TempFolder } from '../helpers/folders.js';
import { buildWheel } from '../helpers/python-projects.js';
import { docker, eventually } from '../helpers/runtime.js';
import { HOST_CA_BUNDLE } from '../helpers/supervisor.js';
import { EngineProxy } from '../helpers/engine-proxy.js';
import {
  runCli as cli,
  serveApi,
  type ServeProcess,
  startServeProcess,
  stopAllServes,
} from '../helpers/serve-process.js';

describe('mcp-box serve: HTTP API and CLI against a real serve', () => {
  let folder: TempFolder;
  let configPath: string;
  let serve: ServeProcess;
  let token: string;
  const api = serveApi(
    () => serve.url,
    () => token,
  );

  beforeAll(async () => {
    folder = copyFixture('python-mcp');
    buildWheel(`${folder.path}/wheels`, 'mcpboxgreet', '1.0', 'hello from serve');
    configPath = `${folder.path}/../mcp-box.json`;
    writeFileSync(
      configPath,
      JSON.stringify({
        mcpServers: {
          py: {
            command: 'python3',
            args: ['server.py'],
            box: { hostPath: 'project', install: { noIndex: true, findLinks: ['wheels'] } },
          },
        },
        box: {
          image: inject('sandboxImage'),
          memoryMb: 512,
          allowedRoots: [tmpdir()],
          caCertsFile: HOST_CA_BUNDLE,
          restart: { backoffInitialMs: 200, maxRestarts: 1 },
        },
        server: { port: 0 },
      }),
    );
    serve = await startServeProcess(configPath);
    token = (await import('node:fs')).readFileSync(`${folder.path}/../.mcp-box/token`, 'utf8').trim();
    await eventually(
      async () => ((await api('GET', '/v1/servers/py')).json.state === 'ready' ? true : undefined),
      120_000,
      200,
    );
  }, 180_000);
  afterAll(async () => {
    await stopAllServes();
    folder.cleanup();
  });

  it('prints where it listens and where the token is, never the token', () => {
    expect(serve.output()).toMatch(/listening on http:\/\/127\.0\.0\.1:\d+/);
    expect(serve.output()).toMatch(/API token: in .*\.mcp-box\/token \(mode 0600\)/);
    expect(serve.output()).not.toContain(token);
  });

  it('guards every route but /healthz: 401 without or with a wrong token, 403 for a browser Origin', async () => {
    expect((await fetch(`${serve.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${serve.url}/v1/servers`)).status).toBe(401);
    expect(
      (await api('GET', '/v1/servers', undefined, { Authorization: 'Bearer wrong-wrong-wrong-wrong' })).status,
    ).toBe(401);
    const browser = await api('GET', '/v1/servers', undefined, { Origin: 'https://evil.example' });
    expect(browser.status).toBe(403);
    expect(browser.json).toMatchObject({ error: { code: 'FORBIDDEN' } });
  });

  it('publishes an OpenAPI document generated from the routes and their schemas', async () => {
    const doc = (await api('GET', '/v1/openapi.json')).json as {
      openapi: string;
      paths: Record<
        string,
        Record<
          string,
          {
            requestBody?: { content: Record<string, { schema: { properties?: Record<string, unknown> } }> };
            security?: unknown[];
          }
        >
      >;
    };
    expect(doc.openapi).toBe('3.1.0');
    for (const [path, method] of [
      ['/healthz', 'get'],
      ['/readyz', 'get'],
      ['/metrics', 'get'],
      ['/v1/servers', 'get'],
      ['/v1/servers', 'post'],
      ['/v1/servers/{name}', 'get'],
      ['/v1/servers/{name}', 'delete'],
      ['/v1/servers/{name}/restart', 'post'],
      ['/v1/servers/{name}/stop', 'post'],
      ['/v1/servers/{name}/start', 'post'],
      ['/v1/servers/{name}/logs', 'get'],
      ['/v1/servers/{name}/history', 'get'],
      ['/v1/servers/{name}/tools', 'get'],
      ['/v1/servers/{name}/tools/{tool}/call', 'post'],
      ['/v1/tasks/{id}', 'get'],
      ['/v1/tasks/{id}/tail', 'get'],
      ['/v1/tasks/{id}/cancel', 'post'],
      ['/v1/events', 'get'],
    ] as const)
      expect(doc.paths[path]?.[method], `${method} ${path}`).toBeDefined();
    const addBody = doc.paths['/v1/servers']?.post?.requestBody?.content['application/json']?.schema;
    expect(Object.keys(addBody?.properties ?? {})).toEqual(
      expect.arrayContaining(['name', 'command', 'args', 'env', 'box']),
    );
    expect(doc.paths['/healthz']?.get?.security).toEqual([]);
  });

  it('lists, filters and reads servers; 404 for unknown ones', async () => {
    expect((await api('GET', '/v1/servers')).json.servers).toEqual([
      expect.objectContaining({ name: 'py', state: 'ready', tools: 2 }),
    ]);
    expect((await api('GET', '/v1/servers?state=failed')).json.servers).toEqual([]);
    expect((await api('GET', '/v1/servers?state=nonsense')).status).toBe(400);
    const one = await api('GET', '/v1/servers/py');
    expect(one.json).toMatchObject({
      name: 'py',
      state: 'ready',
      relay: { subprotocol: 'mcp' },
      clientMode: 'supervisor',
    });
    expect((await api('GET', '/v1/servers/nope')).json).toMatchObject({ error: { code: 'NOT_FOUND' } });
    expect((await api('GET', '/v1/servers/nope')).status).toBe(404);
  });

  it('lists and calls tools over HTTP; a tool timeout comes back in the envelope with its phase', async () => {
    expect(((await api('GET', '/v1/servers/py/tools')).json.tools as { name: string }[]).map((t) => t.name)).toEqual([
      'greet',
      'upper',
    ]);
    expect(
      (await api('POST', '/v1/servers/py/tools/upper/call', { arguments: { text: 'over http' } })).json,
    ).toMatchObject({ content: [{ text: 'OVER HTTP' }] });
    const bad = await api('POST', '/v1/servers/py/tools/upper/call', { arguments: 'not an object' });
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({
      error: { code: 'INVALID_ARGUMENT', message: expect.stringContaining('arguments') as unknown },
    });
  });

  it('adds a server at runtime (400 with the field path for a bad body), removes it, then 404', async () => {
    const bad = await api('POST', '/v1/servers', { name: 'x', command: 'cat', box: { memoryMb: 'lots' } });
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ error: { message: expect.stringContaining('box.memoryMb') as unknown } });
    const added = await api('POST', '/v1/servers', {
      name: 'broken',
      command: 'no-such-command-here',
      box: { restart: { maxRestarts: 0 } },
    });
    expect(added.status).toBe(201);
    const failed = await eventually(
      async () => {
        const r = await api('GET', '/v1/servers/broken');
        return r.json.state === 'failed' ? r.json : undefined;
      },
      60_000,
      200,
    );
    expect(failed).toMatchObject({ error: { phase: 'process_start', exitCode: 127 } });
    const history = (await api('GET', '/v1/servers/broken/history')).json.history as { state: string }[];
    expect(history.map((h) => h.state)).toEqual(['starting', 'failed']);
    const metrics = await (
      await fetch(`${serve.url}/metrics`, { headers: { Authorization: `Bearer ${token}` } })
    ).text();
    expect(metrics).toMatch(/mcp_box_failures_total\{phase="process_start",code="PROCESS_START_FAILED"\} 1/);
    expect(metrics).toMatch(/mcp_box_servers\{state="ready"\} 1/);
    expect((await api('DELETE', '/v1/servers/broken')).status).toBe(200);
    expect((await api('GET', '/v1/servers/broken')).status).toBe(404);
  });

  it('pages logs with after/limit and serves the install task (409 to cancel it finished, 404 unknown)', async () => {
    const first = await api('GET', '/v1/servers/py/logs?limit=3');
    const lines = first.json.lines as { seq: number; source: string; text: string }[];
    expect(lines).toHaveLength(3);
    const next = await api('GET', `/v1/servers/py/logs?after=${lines[2]?.seq}&limit=100`);
    expect((next.json.lines as { seq: number }[])[0]?.seq).toBe((lines[2]?.seq ?? 0) + 1);
    const taskId = (await api('GET', '/v1/servers/py')).json.installTaskId as string;
    expect(taskId).toMatch(/^task_/);
    expect((await api('GET', `/v1/tasks/${taskId}`)).json).toMatchObject({
      state: 'completed',
      kind: 'install',
      subject: 'py',
    });
    expect(((await api('GET', `/v1/tasks/${taskId}/tail?lines=500`)).json.lines as string[]).join('\n')).toMatch(
      /Successfully installed mcpboxgreet-1\.0/,
    );
    expect((await api('POST', `/v1/tasks/${taskId}/cancel`)).status).toBe(409);
    expect((await api('GET', '/v1/tasks/task_nope')).status).toBe(404);
  });

  it('streams events over SSE with ids, and resumes after Last-Event-ID', async () => {
    const read = async (
      headers: Record<string, string>,
    ): Promise<{ id: number; event: string; data: { name?: string; state?: string } }[]> => {
      const controller = new AbortController();
      const res = await fetch(`${serve.url}/v1/events`, {
        headers: { Authorization: `Bearer ${token}`, ...headers },
        signal: controller.signal,
      });
      const reader = res.body!.getReader();
      let text = '';
      const deadline = Date.now() + 1500;
      while (Date.now() < deadline) {
        const chunk = await Promise.race([reader.read(), new Promise<null>((r) => setTimeout(() => r(null), 300))]);
        if (chunk === null || chunk.done) continue;
        text += new TextDecoder().decode(chunk.value);
      }
      controller.abort();
      return text
        .split('\n\n')
        .filter((b) => b.startsWith('id: '))
        .map((b) => {
          const [idLine, eventLine, dataLine] = b.split('\n');
          return {
            id: Number(idLine?.slice(4)),
            event: eventLine?.slice(7) ?? '',
            data: JSON.parse(dataLine?.slice(6) ?? '{}') as { name?: string; state?: string },
          };
        });
    };
    const all = await read({});
    expect(all.length).toBeGreaterThan(3);
    expect(all.map((e) => e.id)).toEqual([...all.map((e) => e.id)].sort((a, b) => a - b));
    const py = all.filter((e) => e.event === 'status' && e.data.name === 'py').map((e) => e.data.state);
    expect(py.slice(0, 2)).toEqual(['starting', 'ready']);
    const middle = all[Math.floor(all.length / 2)] as { id: number };
    const resumed = await read({ 'Last-Event-ID': String(middle.id) });
    expect(resumed[0]?.id).toBe(middle.id + 1);
  });

  it('stops, starts and restarts a server over HTTP', async () => {
    expect((await api('POST', '/v1/servers/py/stop')).json).toMatchObject({ state: 'stopped' });
    expect((await api('POST', '/v1/servers/py/start')).status).toBe(200);
    await eventually(
      async () => ((await api('GET', '/v1/servers/py')).json.state === 'ready' ? true : undefined),
      60_000,
      200,
    );
    const before = (await api('GET', '/v1/servers/py')).json.restarts as number;
    await api('POST', '/v1/servers/py/restart');
    const after = await eventually(
      async () => {
        const r = await api('GET', '/v1/servers/py');
        return r.json.state === 'ready' ? r.json : undefined;
      },
      60_000,
      200,
    );
    expect(after.restarts).toBe(before + 1);
  });

  it("SSE carries a failing-then-recovering server's transitions in order", async () => {
    const controller = new AbortController();
    const res = await fetch(`${serve.url}/v1/events`, {
      headers: { Authorization: `Bearer ${token}` },
      signal: controller.signal,
    });
    const reader = res.body!.getReader();
    let text = '';
    const pump = (async () => {
      for (;;) {
        const chunk = await reader.read().catch(() => ({ done: true, value: undefined }));
        if (chunk.done === true) return;
        text += new TextDecoder().decode(chunk.value);
      }
    })();
    // Fails on its first run (exit 1), then stays up: its HOME survives the restart.
    await api('POST', '/v1/servers', {
      name: 'flaky',
      command: 'sh',
      args: [
        '-c',
        'if [ -f "$HOME/ran" ]; then exec cat; else touch "$HOME/ran"; echo "first run fails" >&2; exit 1; fi',
      ],
      box: { client: 'external', restart: { backoffInitialMs: 200 } },
    });
    await eventually(
      async () => ((await api('GET', '/v1/servers/flaky')).json.state === 'ready' ? true : undefined),
      60_000,
      200,
    );
    await eventually(() => (text.includes('"name":"flaky","state":"ready"') ? true : undefined), 5000);
    controller.abort();
    await pump;
    const flaky = text
      .split('\n\n')
      .filter((b) => b.includes('event: status') && b.includes('"name":"flaky"'))
      .map(
        (b) =>
          JSON.parse(b.slice(b.indexOf('data: ') + 6)) as {
            state: string;
            error?: { phase: string; exitCode: number };
          },
      );
    expect(flaky.map((e) => e.state)).toEqual(['starting', 'backoff', 'starting', 'ready']);
    expect(flaky[1]?.error).toMatchObject({ exitCode: 1 });
    await api('DELETE', '/v1/servers/flaky');
  });

  it('serve refuses a bad config with the field path and a usage exit code', () => {
    const bad = `${folder.path}/../bad.json`;
    writeFileSync(bad, JSON.stringify({ mcpServers: { x: { command: 'cat', box: { cpus: -1 } } } }));
    const run = cli(['serve', '--config', bad], process.cwd());
    expect(run.code).toBe(1);
    expect(run.out).toMatch(/\[config\/INVALID_ARGUMENT\] Invalid configuration: mcpServers\.x\.box\.cpus/);
  });

  it('says ready on /readyz while the engine and sessions are up', async () => {
    const ready = await api('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.json).toMatchObject({ ready: true, reasons: [] });
  });

  it('the CLI binary talks to it: status, call, logs', () => {
    const cwd = `${folder.path}/..`;
    const status = cli(['status', '--url', serve.url], cwd);
    expect(status.code).toBe(0);
    expect(status.out).toMatch(/^NAME\s+STATE\s+PHASE\s+LAST ERROR\s+UPTIME\s+RESTARTS/);
    expect(status.out).toMatch(/\npy\s+ready\s+-\s+-\s+\d+[smh]/);
    const call = cli(['call', 'py', 'greet', '{"name":"cli"}', '--url', serve.url], cwd);
    expect(call).toEqual({ code: 0, out: 'hello from serve\n' });
    const bad = cli(['call', 'nope', 'greet', '--url', serve.url], cwd);
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(/NOT_FOUND/);
    const doctor = cli(['doctor', '--config', configPath], cwd);
    expect(doctor.code).toBe(0);
    expect(doctor.out).toMatch(/^ok {3}engine {5}Docker /m);
    expect(doctor.out).toMatch(/^ok {3}root .* exists$/m);
    expect(doctor.out).toMatch(/^ok {3}token .*token \(0600\)$/m);
    expect(doctor.out).toMatch(/^ok {3}hardening /m);
    const logs = cli(['logs', 'py', '--url', serve.url], cwd);
    expect(logs.out).toMatch(/\[lifecycle\] ready \(2 tools\)/);
    expect(logs.out).toMatch(/\[stderr\] python fixture starting/);
  });

  it('stops cleanly on SIGTERM within the grace, leaving no container behind', async () => {
    const started = Date.now();
    serve.child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => serve.child.once('exit', (c) => r(c)));
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(serve.output()).toContain('SIGTERM: stopping servers');
    const left = await docker.listContainers({ all: true, filters: { label: [`mcp-box.tag=${inject('runTag')}`] } });
    const mine = left.filter((c) => c.Labels['mcp-box.owner.pid'] === String(serve.child.pid));
    expect(mine).toEqual([]);
  });

  it(
    'after a restart of serve, history, logs and the ' + 'install task of a server still show what happened before',
    async () => {
      serve = await startServeProcess(configPath);
      await eventually(
        async () => ((await api('GET', '/v1/servers/py')).json.state === 'ready' ? true : undefined),
        120_000,
        200,
      );
      const history = (await api('GET', '/v1/servers/py/history')).json.history as { state: string; at: string }[];
      const states = history.map((h) => h.state);
      // First run: starting → ready → stopped (SIGTERM); this run: starting → ready again.
      expect(states.slice(0, 3)).toEqual(['starting', 'ready', 'stopped']);
      expect(states.slice(-2)).toEqual(['starting', 'ready']);
      const logs = (await api('GET', '/v1/servers/py/logs?limit=5000')).json.lines as { seq: number; text: string }[];
      // At least one ready from the first run (several, with the stop/start/restart test) and this one.
      expect(logs.filter((l) => l.text.startsWith('ready (2 tools)')).length).toBeGreaterThanOrEqual(2);
      expect(logs[0]?.seq).toBe(1);
      expect(logs.map((l) => l.seq)).toEqual([...logs.map((l) => l.seq)].sort((a, b) => a - b));
      expect(new Set(logs.map((l) => l.seq)).size).toBe(logs.length);
    },
  );

  it('killed with kill -9 and started again: no orphan container or process, the servers come back', async () => {
    const killedPid = serve.child.pid;
    serve.child.kill('SIGKILL');
    await new Promise((r) => serve.child.once('exit', r));
    const orphans = await docker.listContainers({
      all: true,
      filters: { label: [`mcp-box.tag=${inject('runTag')}`, `mcp-box.owner.pid=${killedPid}`] },
    });
    expect(orphans.length).toBeGreaterThan(0); // what kill -9 leaves behind…
    serve = await startServeProcess(configPath);
    expect(serve.output()).toMatch(/reaped \d+ container\(s\) left by dead supervisors/);
    const left = await docker.listContainers({
      all: true,
      filters: { label: [`mcp-box.tag=${inject('runTag')}`, `mcp-box.owner.pid=${killedPid}`] },
    });
    expect(left).toEqual([]); // …is gone, with its processes
    await eventually(
      async () => ((await api('GET', '/v1/servers/py')).json.state === 'ready' ? true : undefined),
      120_000,
      200,
    );
    expect((await api('POST', '/v1/servers/py/tools/upper/call', { arguments: { text: 'back' } })).json).toMatchObject({
      content: [{ text: 'BACK' }],
    });
    serve.child.kill('SIGTERM');
    expect(await new Promise<number | null>((r) => serve.child.once('exit', (c) => r(c)))).toBe(0);
  });

  it('/readyz turns 503 with reasons while the engine is unreachable, and back to 200', async () => {
    const proxy = new EngineProxy(`${folder.path}/../engine.sock`);
    await proxy.start();
    serve = await startServeProcess(configPath, { DOCKER_HOST: `unix://${proxy.path}` });
    const child = serve.child;
    expect((await api('GET', '/readyz')).status).toBe(200);
    await proxy.cut();
    const down = await api('GET', '/readyz');
    expect(down.status).toBe(503);
    expect(down.json).toMatchObject({ ready: false, reasons: [expect.stringContaining('engine') as unknown] });
    expect((await fetch(`${serve.url}/healthz`)).status).toBe(200); // alive, not ready
    await proxy.start();
    await eventually(async () => ((await api('GET', '/readyz')).status === 200 ? true : undefined), 20_000, 200);
    child.kill('SIGTERM');
    expect(await new Promise<number | null>((r) => child.once('exit', (c) => r(c)))).toBe(0);
    await proxy.cut();
  });
});
