/**
 * Fault injection against a real `serve` (the built CLI): kill -9 while a dependency install is
 * working, then start it again with the same config and state dir.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { tempFolder, type TempFolder } from '../helpers/folders.js';
import { writePyprojectPackage } from '../helpers/python-projects.js';
import { docker, eventually } from '../helpers/runtime.js';
import { serveApi, type ServeProcess, startServeProcess, stopAllServes } from '../helpers/serve-process.js';
import { HOST_CA_BUNDLE } from '../helpers/supervisor.js';

/** A stdlib MCP server that needs the installed package `mcpboxpkg` (so it runs only once the install did). */
const SERVER_PY =
  `import json, sys
import mcpboxpkg

def send(m):
    sys.stdout.write(json.dumps(m) + "\\n"); sys.stdout.flush()

for line in sys.stdin:
    if not line.strip():
        continue
    m = json.loads(line)
    if m.get("id") is None:
        continue
    method, p = m.get("method"), m.get("params") or {}
    if method == "initialize":
        r = {"protocolVersion": p.get("protocolVersion", "2025-06-18"), ` +
  `"capabilities": {"tools": {}}, "serverInfo": {"name": "slow", "version": "1"}}
    elif method == "tools/list":
        r = {"tools": [{"name": "answer", "inputSchema": {"type": "object"}}]}
    elif method == "tools/call":
        r = {"content": [{"type": "text", "text": str(mcpboxpkg.answer())}]}
    else:
        r = {}
    send({"jsonrpc": "2.0", "id": m["id"], "result": r})
`;

interface TaskView {
  id: string;
  state: string;
  endedAt: string | null;
  error: { code: string; phase: string; message: string } | null;
}

describe('fault injection: kill -9 of serve while an install is working', () => {
  let folder: TempFolder;
  let configPath: string;
  let serve: ServeProcess;
  let token: string;
  const api = serveApi(
    () => serve.url,
    () => token,
  );
  /** How many pip build-backend processes run in a session container (looked at from outside). */
  const backendsRunning = async (container: string): Promise<number> => {
    const exec = await docker.getContainer(container).exec({
      Cmd: ['sh', '-c', 'ps -eo args | grep -c "[_]in_process" || true'],
      AttachStdout: true,
      Tty: true,
      User: '10001',
    });
    const stream = await exec.start({ Tty: true });
    const text = await new Promise<string>((resolve) => {
      let out = '';
      stream.on('data', (c: Buffer) => (out += c.toString('utf8')));
      stream.on('end', () => resolve(out));
    });
    return Number(text.trim());
  };
  const ownedBy = (pid: number | undefined) =>
    docker.listContainers({
      all: true,
      filters: { label: [`mcp-box.tag=${inject('runTag')}`, `mcp-box.owner.pid=${pid}`] },
    });

  beforeAll(() => {
    folder = tempFolder('mcp-box-slow-install-');
    writePyprojectPackage(folder);
    // The package's build backend hangs while the project holds SLOW: an install that never ends.
    const backend = `${folder.path}/_build/mini_backend.py`;
    writeFileSync(
      backend,
      readFileSync(backend, 'utf8').replace(
        'def get_requires_for_build_wheel(config_settings=None):\n',
        'def get_requires_for_build_wheel(config_settings=None):\n' +
          '    while os.path.exists(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "SLOW")):\n' +
          '        time.sleep(1)\n',
      ),
    );
    folder.write('SLOW', 'remove me to let the install finish\n');
    folder.write('server.py', SERVER_PY);
    configPath = `${folder.path}/../mcp-box.json`;
    writeFileSync(
      configPath,
      JSON.stringify({
        mcpServers: {
          slow: { command: 'python', args: ['server.py'], box: { hostPath: 'project', install: { noIndex: true } } },
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
  });
  afterAll(async () => {
    await stopAllServes();
    folder.cleanup();
  });

  it(
    "the next serve reaps the killed one's container with its install, " +
      'shows the task failed/INTERRUPTED, and installs again to ready',
    async () => {
      serve = await startServeProcess(configPath);
      token = readFileSync(`${folder.path}/../.mcp-box/token`, 'utf8').trim();
      // Wait until the install really runs: pip is inside the package's build backend.
      const { taskId, session } = await eventually(
        async () => {
          const server = (await api('GET', '/v1/servers/slow')).json as {
            installTaskId?: string;
            session?: string;
            phase?: string;
          };
          if (server.installTaskId === undefined || server.session === undefined || server.phase !== 'dep_install')
            return undefined;
          const task = (await api('GET', `/v1/tasks/${server.installTaskId}`)).json as unknown as TaskView;
          if (task.state !== 'working') return undefined;
          return (await backendsRunning(server.session)) > 0
            ? { taskId: server.installTaskId, session: server.session }
            : undefined;
        },
        90_000,
        250,
      );
      const container = (await docker.getContainer(session).inspect()).Id;

      const killedPid = serve.child.pid;
      serve.child.kill('SIGKILL');
      await new Promise((r) => serve.child.once('exit', r));
      const killedAt = Date.now();
      // what kill -9 leaves: the session, pip still in it
      expect((await ownedBy(killedPid)).map((c) => c.Id)).toContain(container);

      rmSync(`${folder.path}/SLOW`); // the next install may finish
      serve = await startServeProcess(configPath);
      expect(serve.output()).toMatch(/reaped \d+ container\(s\) left by dead supervisors/);
      // No orphan: the killed serve's container, and the install running in it, are gone.
      expect(await ownedBy(killedPid)).toEqual([]);
      await expect(docker.getContainer(container).inspect()).rejects.toMatchObject({ statusCode: 404 });

      // The interrupted task is still there, and says what happened to it.
      const interrupted = await api('GET', `/v1/tasks/${taskId}`);
      expect(interrupted.status).toBe(200);
      const task = interrupted.json as unknown as TaskView;
      expect(task).toMatchObject({ id: taskId, state: 'failed', error: { code: 'INTERRUPTED', phase: 'dep_install' } });
      expect(task.error?.message).toMatch(/serve stopped while this task was working/);
      expect(task.endedAt).not.toBeNull();
      expect((await api('POST', `/v1/tasks/${taskId}/cancel`)).status).toBe(409);

      // The server installs again (a new task) and becomes ready.
      const ready = await eventually(
        async () => {
          const r = (await api('GET', '/v1/servers/slow')).json as {
            state: string;
            installTaskId?: string;
            session?: string;
          };
          return r.state === 'ready' || r.state === 'failed' ? r : undefined;
        },
        120_000,
        250,
      );
      console.log(
        `[measure] kill -9 during install: ready again ${Date.now() - killedAt} ms after the kill ` +
          `(restart of serve included)`,
      );
      expect(ready.state).toBe('ready');
      expect(ready.installTaskId).not.toBe(taskId);
      expect(await backendsRunning(ready.session as string)).toBe(0); // no install process left anywhere
      expect(((await api('GET', `/v1/tasks/${ready.installTaskId}`)).json as unknown as TaskView).state).toBe(
        'completed',
      );
      expect((await api('POST', '/v1/servers/slow/tools/answer/call', { arguments: {} })).json).toMatchObject({
        content: [{ text: '42' }],
      });
      // The task list of this serve holds both: the interrupted one and the one that finished.
      expect(((await api('GET', `/v1/tasks/${taskId}`)).json as unknown as TaskView).state).toBe('failed');

      serve.child.kill('SIGTERM');
      expect(await new Promise<number | null>((r) => serve.child.once('exit', (c) => r(c)))).toBe(0);
    },
  );
});
