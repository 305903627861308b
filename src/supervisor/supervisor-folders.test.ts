import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { thrown } from '../../test/helpers/thrown.js';
import type { Runtime, Session } from '../runtime/types.js';
import { eventually } from '../../test/helpers/runtime.js';
import { createSupervisor, type Supervisor } from './supervisor.js';

/** No engine: sandboxing is disabled, so every added server fails at once with BOX_DISABLED. */
const noRuntime = { close: async () => undefined, sessions: () => [] } as unknown as Runtime;

describe('Supervisor.add: the folder rules at add time', () => {
  let dir: string;
  let sup: Supervisor;
  beforeAll(async () => {
    dir = realpathSync(mkdtempSync(join(tmpdir(), 'mcp-box-sup-folders-')));
    mkdirSync(join(dir, 'servers', 'a', 'sub'), { recursive: true });
    writeFileSync(join(dir, 'servers', 'a', 'server.py'), '');
    writeFileSync(join(dir, 'mcp-box.json'), '{}');
    sup = await createSupervisor(
      { box: { enabled: false, allowedRoots: [tmpdir()] } },
      { configDir: dir, runtime: noRuntime },
    );
  });
  afterAll(async () => {
    await sup.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses the config folder, the state folder and an overlap with another server, and adds nothing', () => {
    expect(thrown(() => sup.add('cfg', { command: 'cat', box: { hostPath: '.' } }))).toMatchObject({
      code: 'HOST_PATH_DENIED',
      phase: 'workspace_stage',
      message: expect.stringContaining('holds the config folder') as unknown,
    });
    expect(thrown(() => sup.add('state', { command: 'cat', box: { hostPath: '.mcp-box' } })).message).toContain(
      'holds the state folder',
    );
    sup.add('a', { command: 'python3', args: ['server.py'], box: { hostPath: 'servers/a' } });
    for (const hostPath of ['servers/a', 'servers/a/sub', 'servers']) {
      expect(thrown(() => sup.add('b', { command: 'cat', box: { hostPath } })).message).toContain(
        'overlaps the folder of server "a"',
      );
    }
    expect(sup.has('b')).toBe(false);
  });

  it(
    'infers no folder for a server added with inferFolder: ' + 'false (the API), and frees a removed server folder',
    async () => {
      // Inferred from its args, this server's folder would be servers/a, which "a" holds.
      expect(
        thrown(() => sup.add('inferred', { command: 'python3', args: [join(dir, 'servers', 'a', 'server.py')] }))
          .message,
      ).toContain('overlaps the folder of server "a"');
      expect(
        sup.add('api', { command: 'python3', args: [join(dir, 'servers', 'a', 'server.py')] }, { inferFolder: false })
          .name,
      ).toBe('api');
      await sup.remove('a');
      expect(sup.add('b', { command: 'cat', box: { hostPath: 'servers/a/sub' } }).name).toBe('b');
    },
  );
});

describe('the folder rules again at every stage', () => {
  it('a folder link re-pointed at the config folder after the server was added is refused when staging', async () => {
    const dir = realpathSync(mkdtempSync(join(tmpdir(), 'mcp-box-sup-restage-')));
    const roots = join(dir, 'roots');
    mkdirSync(join(roots, 'conf'), { recursive: true });
    mkdirSync(join(roots, 'proj'));
    writeFileSync(
      join(roots, 'conf', 'mcp-box.json'),
      '{"mcpServers":{"x":{"command":"cat","env":{"API_KEY":"secret"}}}}',
    );
    symlinkSync(join(roots, 'proj'), join(roots, 'link'));
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const session = {
      info: { name: 'fake-session' },
      holds: () => false,
      checkAlive: async () => true,
    } as unknown as Session;
    const runtime = {
      ping: async () => ({}),
      ensureSession: async () => (await gate, session),
      close: async () => undefined,
      sessions: () => [],
    } as unknown as Runtime;
    const sup = await createSupervisor(
      { box: { allowedRoots: [roots], pingIntervalSec: 0 } },
      { configDir: join(roots, 'conf'), runtime },
    );
    try {
      // Added while the link points at an ordinary project folder: accepted.
      sup.add('a', { command: 'cat', box: { hostPath: join(roots, 'link') } });
      unlinkSync(join(roots, 'link'));
      symlinkSync(join(roots, 'conf'), join(roots, 'link'));
      open();
      const failed = await eventually(() => (sup.get('a').state === 'failed' ? sup.get('a') : undefined), 10_000);
      expect(failed.error).toMatchObject({ code: 'HOST_PATH_DENIED', phase: 'workspace_stage' });
      expect(failed.error?.message).toContain('holds the config folder');
    } finally {
      await sup.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
