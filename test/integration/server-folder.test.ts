import { execFileSync } from 'node:child_process';
import { dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stageWorkspace } from '../../src/supervisor/stage-server.js';
import type { Runtime, Session } from '../../src/runtime/types.js';
import { resolveHostFolder, rewriteForContainer } from '../../src/workspace/host-folder.js';
import { checkHostPolicy } from '../../src/workspace/host-policy.js';
import { tempFolder, type TempFolder } from '../helpers/folders.js';
import { collect, testProfile, testRuntime } from '../helpers/runtime.js';

describe('a server folder from its command line, end to end', () => {
  let runtime: Runtime;
  let session: Session;
  let f: TempFolder;

  beforeAll(async () => {
    runtime = testRuntime();
    session = await runtime.ensureSession(testProfile());
    f = tempFolder();
  });
  afterAll(async () => {
    await runtime.close();
    f.cleanup();
  });

  it(
    'infers the project from a real venv python, rewrites ' + 'command, args and cwd, and runs it in the sandbox',
    async () => {
      f.write(
        'server.py',
        'import sys\nprint("args:", sys.argv[1:])\nprint(open(sys.argv[1]).read().strip())\n' +
          'import os\nprint("cwd:", os.getcwd())\n',
      );
      f.write('data/config.txt', 'config contents');
      execFileSync('python3', ['-m', 'venv', '--without-pip', `${f.path}/.venv`]);
      const def = {
        command: `${f.path}/.venv/bin/python`,
        args: [`${f.path}/server.py`, `${f.path}/data/config.txt`, '--verbose', '/etc/hostname'],
      };

      const { hostPath, inferred } = resolveHostFolder(def, '/nonexistent-config-dir');
      expect(inferred).toBe(true);
      expect(hostPath).toBe(f.path); // not the base interpreter's folder the venv python links to
      const real = checkHostPolicy(hostPath as string, { allowedRoots: [dirname(f.path)] });

      const identity = await session.createIdentity();
      const staged = await stageWorkspace({ session, identity, hostPath: real });
      expect(staged.stage.files).toBe(2); // .venv is not staged
      const inBox = rewriteForContainer(def, real, identity.workspace);
      expect(inBox).toEqual({
        command: 'python',
        args: [
          `${identity.workspace}/server.py`,
          `${identity.workspace}/data/config.txt`,
          '--verbose',
          '/etc/hostname',
        ],
        cwd: identity.workspace,
      });
      const proc = await session.startProcess({
        id: 'venv-server',
        identity,
        cmd: [inBox.command, ...inBox.args],
        cwd: inBox.cwd,
      });
      const out = await collect(proc.stdout);
      expect(out).toContain('config contents');
      expect(out).toContain(`cwd: ${identity.root}/ws.${staged.stage.generation}`);
      expect((await proc.exited).exitCode).toBe(0);
      await session.releaseIdentity(identity);
    },
  );

  it('refuses a folder outside the allowed roots in workspace_stage, naming the path and the rule', () => {
    expect(() => checkHostPolicy(f.path, { allowedRoots: ['/srv/mcp-servers'] })).toThrow(
      expect.objectContaining({
        code: 'HOST_PATH_DENIED',
        phase: 'workspace_stage',
        message: expect.stringMatching(/not under an allowed root/) as unknown,
      }) as Error,
    );
  });
});
