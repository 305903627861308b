import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { copyFixture, type TempFolder } from '../helpers/folders.js';
import { buildWheel } from '../helpers/python-projects.js';
import { docker, eventually } from '../helpers/runtime.js';
import { startServeProcess, stopAllServes, type ServeProcess } from '../helpers/serve-process.js';

/** box.persistentSessions: sessions outlive serve, and the next serve adopts and cleans them. */
describe('persistent sessions', () => {
  let folder: TempFolder;
  let configPath: string;

  const start = (): Promise<ServeProcess> => startServeProcess(configPath);
  const get = async (url: string, path: string): Promise<Record<string, unknown>> => {
    const token = readFileSync(`${folder.path}/../.mcp-box/token`, 'utf8').trim();
    return (await (await fetch(`${url}${path}`, { headers: { Authorization: `Bearer ${token}` } })).json()) as Record<
      string,
      unknown
    >;
  };
  const ready = (url: string): Promise<Record<string, unknown>> =>
    eventually(
      async () => {
        const s = await get(url, '/v1/servers/py');
        return s.state === 'ready' ? s : undefined;
      },
      120_000,
      200,
    );
  const serverProcesses = (session: string): number =>
    Number(
      execFileSync('docker', ['exec', session, 'sh', '-c', 'ps -eo args | grep -c "^python3 server.py" || true'], {
        encoding: 'utf8',
      }).trim(),
    );

  beforeAll(() => {
    folder = copyFixture('python-mcp');
    buildWheel(`${folder.path}/wheels`, 'mcpboxgreet', '1.0', 'hi');
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
        box: { image: inject('sandboxImage'), memoryMb: 512, allowedRoots: [tmpdir()], persistentSessions: true },
        server: { port: 0 },
      }),
    );
  });
  afterAll(async () => {
    await stopAllServes();
    // Persistent sessions stay by design: remove this test's.
    for (const c of await docker.listContainers({
      all: true,
      filters: { label: [`mcp-box.tag=${inject('runTag')}`, 'mcp-box.persistent=true'] },
    })) {
      await docker.getContainer(c.Id).remove({ force: true, v: true });
    }
    for (const v of (
      await docker.listVolumes({ filters: { label: [`mcp-box.tag=${inject('runTag')}`, 'mcp-box.persistent=true'] } })
    ).Volumes ?? []) {
      await docker
        .getVolume(v.Name)
        .remove()
        .catch(() => undefined);
    }
    folder.cleanup();
  });

  it('keeps the session over a clean stop, adopts it on the next start, and cleans what a kill -9 left', async () => {
    const first = await start();
    const session = (await ready(first.url)).session as string;
    first.child.kill('SIGTERM');
    expect(await new Promise((r) => first.child.once('exit', r))).toBe(0);
    expect((await docker.getContainer(session).inspect()).State.Running).toBe(true); // still there

    const second = await start();
    const adopted = await ready(second.url);
    expect(adopted.session).toBe(session); // adopted, not re-created
    expect(serverProcesses(session)).toBe(1);
    // kill -9 of the supervisor: stdin EOF ends a well-behaved server, but a tenant process that
    // ignores it (planted here as the server's uid) would live on.
    execFileSync('docker', [
      'exec',
      '-d',
      '-u',
      `${adopted.uid as number}`,
      session,
      'sh',
      '-c',
      'trap "" TERM HUP; exec sleep 1000',
    ]);
    second.child.kill('SIGKILL');
    await new Promise((r) => second.child.once('exit', r));
    const orphans = (): number =>
      Number(
        execFileSync('docker', ['exec', session, 'sh', '-c', 'ps -eo args | grep -c "^sleep 1000" || true'], {
          encoding: 'utf8',
        }).trim(),
      );
    expect(orphans()).toBe(1);

    const third = await start();
    const readopted = await ready(third.url);
    // On a mismatch, say why: the serve's log and the server's history name the failed adoption.
    const why = async (): Promise<string> =>
      `serve output:\n${third.output()}\nhistory: ${JSON.stringify(await get(third.url, '/v1/servers/py/history'))}`;
    if (readopted.session !== session) expect.fail(`not adopted (${String(readopted.session)})\n${await why()}`);
    expect(orphans()).toBe(0); // killed on adoption
    expect(serverProcesses(session)).toBe(1); // and a fresh server started
    third.child.kill('SIGTERM');
    expect(await new Promise((r) => third.child.once('exit', r))).toBe(0);
  });
});
