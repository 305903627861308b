import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { thrown } from '../../test/helpers/thrown.js';
import type { Runtime } from '../runtime/types.js';
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
    sup = await createSupervisor({ box: { enabled: false, allowedRoots: [tmpdir()] } }, { configDir: dir, runtime: noRuntime });
  });
  afterAll(async () => {
    await sup.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses the config folder, the state folder and an overlap with another server, and adds nothing', () => {
    expect(thrown(() => sup.add('cfg', { command: 'cat', box: { hostPath: '.' } }))).toMatchObject({ code: 'HOST_PATH_DENIED', phase: 'workspace_stage', message: expect.stringContaining('holds the config folder') as unknown });
    expect(thrown(() => sup.add('state', { command: 'cat', box: { hostPath: '.mcp-box' } })).message).toContain('holds the state folder');
    sup.add('a', { command: 'python3', args: ['server.py'], box: { hostPath: 'servers/a' } });
    for (const hostPath of ['servers/a', 'servers/a/sub', 'servers']) {
      expect(thrown(() => sup.add('b', { command: 'cat', box: { hostPath } })).message).toContain('overlaps the folder of server "a"');
    }
    expect(sup.has('b')).toBe(false);
  });

  it('infers no folder for a server added with inferFolder: false (the API), and frees a removed server folder', async () => {
    // Inferred from its args, this server's folder would be servers/a, which "a" holds.
    expect(thrown(() => sup.add('inferred', { command: 'python3', args: [join(dir, 'servers', 'a', 'server.py')] })).message).toContain('overlaps the folder of server "a"');
    expect(sup.add('api', { command: 'python3', args: [join(dir, 'servers', 'a', 'server.py')] }, { inferFolder: false }).name).toBe('api');
    await sup.remove('a');
    expect(sup.add('b', { command: 'cat', box: { hostPath: 'servers/a/sub' } }).name).toBe('b');
  });
});
