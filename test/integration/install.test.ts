import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BoxError } from '../../src/errors/box-error.js';
import { installDependencies, type StagedWorkspace } from '../../src/install/install-dependencies.js';
import { stageWorkspace } from '../../src/supervisor/stage-server.js';
import type { InstallOptions } from '../../src/install/detect-install.js';
import type { Identity, Runtime, Session } from '../../src/runtime/types.js';
import { TaskRegistry } from '../../src/tasks/task-registry.js';
import { tempFolder, type TempFolder } from '../helpers/folders.js';
import { buildWheel, writePyprojectPackage } from '../helpers/python-projects.js';
import { collect, eventually, testProfile, testRuntime } from '../helpers/runtime.js';

const HOST_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
const WHEELHOUSE: InstallOptions = { noIndex: true, findLinks: ['wheels'] };

describe('dependency install', () => {
  let runtime: Runtime;
  let session: Session;
  const tasks = new TaskRegistry({ heartbeatMs: 1000 });
  const folders: TempFolder[] = [];
  const folder = (): TempFolder => {
    const f = tempFolder();
    folders.push(f);
    return f;
  };
  const prepare = async (
    identity: Identity,
    f: TempFolder,
    installOptions: InstallOptions,
    timeoutMs?: number,
  ): Promise<{ staged: StagedWorkspace; outcome: Awaited<ReturnType<typeof installDependencies>> }> => {
    const staged = await stageWorkspace({
      session,
      identity,
      hostPath: f.path,
      installOptions,
      caCertsFile: HOST_CA_BUNDLE,
    });
    const outcome = await installDependencies({
      session,
      identity,
      staged,
      installOptions,
      tasks,
      subject: 'test',
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
    });
    return { staged, outcome };
  };

  beforeAll(async () => {
    runtime = testRuntime();
    session = await runtime.ensureSession(testProfile({ memoryMb: 1024 }));
  });
  afterAll(async () => {
    tasks.close();
    await runtime.close();
    for (const f of folders) f.cleanup();
  });

  it('installs a requirements project from a local wheelhouse, then skips the unchanged second start', async () => {
    const identity = await session.createIdentity();
    const f = folder();
    buildWheel(`${f.path}/wheels`, 'mcpboxdemo', '1.0', 'hello from the wheelhouse');
    f.write('requirements.txt', '# runtime deps\nmcpboxdemo==1.0\n');
    f.write('server.py', 'import mcpboxdemo\nprint(mcpboxdemo.greet())\n');

    const cold = await prepare(identity, f, WHEELHOUSE);
    expect(cold.outcome.skipped).toBe(false);
    expect(cold.outcome.installed).toEqual(['python']);
    expect(tasks.get(cold.outcome.taskId as string).state).toBe('completed');
    expect(tasks.tail(cold.outcome.taskId as string, 200).join('\n')).toMatch(/Successfully installed mcpboxdemo-1\.0/);
    console.log(`[measure] cold install (venv + wheelhouse): ${cold.outcome.durationMs} ms`);

    const proc = await session.startProcess({
      id: 'py',
      identity,
      cmd: ['python', 'server.py'],
      env: cold.outcome.env,
    });
    expect(await collect(proc.stdout)).toBe('hello from the wheelhouse\n');
    expect((await proc.exited).exitCode).toBe(0);

    const warm = await prepare(identity, f, WHEELHOUSE);
    expect(warm.outcome.skipped).toBe(true);
    expect(warm.outcome.taskId).toBeNull(); // the installer did not run
    expect(warm.staged.fingerprints.python).toBe(cold.staged.fingerprints.python);
    expect(warm.outcome.durationMs).toBeLessThan(100);
    console.log(
      `[measure] warm dep_install (fingerprint hit): ${warm.outcome.durationMs} ms; ` +
        `restage ${warm.staged.stage.durationMs} ms`,
    );
    const again = await session.startProcess({
      id: 'py2',
      identity,
      cmd: ['python', 'server.py'],
      env: warm.outcome.env,
    });
    expect(await collect(again.stdout)).toBe('hello from the wheelhouse\n');

    // A changed requirement changes the fingerprint and installs again.
    buildWheel(`${f.path}/wheels`, 'mcpboxdemo', '2.0', 'hello from version 2');
    f.write('requirements.txt', 'mcpboxdemo==2.0\n');
    const changed = await prepare(identity, f, WHEELHOUSE);
    expect(changed.outcome.skipped).toBe(false);
    const v2 = await session.startProcess({
      id: 'py3',
      identity,
      cmd: ['python', 'server.py'],
      env: changed.outcome.env,
    });
    expect(await collect(v2.stdout)).toBe('hello from version 2\n');
    await session.releaseIdentity(identity);
  });

  it('installs a pyproject.toml package built by its own backend', async () => {
    const identity = await session.createIdentity();
    const f = folder();
    writePyprojectPackage(f);
    const { outcome } = await prepare(identity, f, { noIndex: true });
    expect(outcome.installed).toEqual(['python']);
    const r = await session.exec({
      identity,
      cmd: ['/bin/sh', '-c', 'cd / && python -c "import mcpboxpkg, sys; print(mcpboxpkg.answer(), sys.prefix)"'],
      env: outcome.env,
    });
    expect(r.stdout).toMatch(new RegExp(`^42 ${identity.root}/deps/py-[0-9a-f]+/venv\\n$`));
    await session.releaseIdentity(identity);
  });

  it('installs a Node project with a lockfile (npm ci through the CA bundle) and skips it when unchanged', async () => {
    const identity = await session.createIdentity();
    const f = folder();
    f.write(
      'package.json',
      JSON.stringify({
        name: 'node-fixture',
        version: '1.0.0',
        private: true,
        type: 'module',
        dependencies: { 'is-number': '7.0.0' },
      }),
    );
    execFileSync('npm', ['install', '--package-lock-only', '--no-audit', '--no-fund'], {
      cwd: f.path,
      stdio: 'ignore',
    });
    f.write('index.js', "import isNumber from 'is-number';\nconsole.log(isNumber(5), isNumber('x'));\n");
    const registry = execFileSync('npm', ['config', 'get', 'registry'], { encoding: 'utf8' }).trim();
    const options: InstallOptions = { npmRegistry: registry };
    const cold = await prepare(identity, f, options);
    expect(cold.outcome.installed).toEqual(['node']);
    console.log(`[measure] cold npm ci: ${cold.outcome.durationMs} ms`);
    const run = await session.exec({ identity, cmd: ['node', 'index.js'], env: cold.outcome.env });
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('true false\n');
    const warm = await prepare(identity, f, options);
    expect(warm.outcome.skipped).toBe(true);
    const again = await session.exec({
      identity,
      cmd: ['/bin/sh', '-c', 'test -L node_modules && node index.js'],
      env: warm.outcome.env,
    });
    expect(again.stdout).toBe('true false\n');
    await session.releaseIdentity(identity);
  });

  it("fails in dep_install with pip's own error lines for a broken requirement", async () => {
    const identity = await session.createIdentity();
    const f = folder();
    f.mkdir('wheels');
    f.write('requirements.txt', 'definitely-not-a-package-mcpbox==9.9.9\n');
    const error = await prepare(identity, f, WHEELHOUSE).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BoxError);
    expect(error).toMatchObject({ code: 'INSTALL_FAILED', phase: 'dep_install' });
    expect((error as BoxError).message).toMatch(
      /No matching distribution found for definitely-not-a-package-mcpbox==9\.9\.9/,
    );
    expect((error as BoxError).details.exitCode).toBe(1);
    await session.releaseIdentity(identity);
  });

  it('rejects requirement lines that change the index or leave the folder, before installing', async () => {
    const identity = await session.createIdentity();
    const f = folder();
    f.write('requirements.txt', 'requests\n--index-url http://index.invalid/simple\n');
    await expect(prepare(identity, f, {})).rejects.toMatchObject({
      code: 'INVALID_REQUIREMENT',
      phase: 'dep_install',
      message: expect.stringContaining('requirements.txt:2') as unknown,
    });
    f.write('requirements.txt', '-r ../../outside.txt\n');
    await expect(prepare(identity, f, {})).rejects.toMatchObject({
      code: 'INVALID_REQUIREMENT',
      message: expect.stringContaining('outside the server folder') as unknown,
    });
    await session.releaseIdentity(identity);
  });

  it('kills an install that hangs at its timeout, while another server in the session keeps answering', async () => {
    const neighbour = await session.createIdentity();
    const echo = await session.startProcess({ id: 'neighbour', identity: neighbour, cmd: ['cat'] });
    const identity = await session.createIdentity();
    const f = folder();
    writePyprojectPackage(f, { hang: true });
    const started = Date.now();
    const error = await prepare(identity, f, { noIndex: true }, 4000).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'INSTALL_TIMEOUT', phase: 'dep_install' });
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(session.alive).toBe(true);
    echo.stdin.write('still answering\n');
    expect(await collect(echo.stdout, (t) => t.includes('still answering'))).toContain('still answering');
    const left = await eventually(
      async () => {
        const ps = await session.exec({ cmd: ['/bin/sh', '-c', `ps -o args= -u ${identity.uid}`] });
        return ps.stdout.trim() === '' ? 'none' : undefined;
      },
      10_000,
      200,
    );
    expect(left).toBe('none');
    await echo.stop({ eofGraceMs: 1000 });
    await session.releaseIdentity(identity);
    await session.releaseIdentity(neighbour);
  });

  it('cancels a running install (only the install), and refuses to cancel it twice', async () => {
    const identity = await session.createIdentity();
    const f = folder();
    writePyprojectPackage(f, { hang: true });
    const staged = await stageWorkspace({ session, identity, hostPath: f.path, installOptions: { noIndex: true } });
    let taskId = '';
    const running = installDependencies({
      session,
      identity,
      staged,
      installOptions: { noIndex: true },
      tasks,
      subject: 'cancel-me',
      onTask: (id) => (taskId = id),
    });
    running.catch(() => undefined);
    // pip keeps a backend's output to itself: wait until pip is running, then a little longer.
    await eventually(
      () => (taskId !== '' && tasks.tail(taskId, 50).some((l) => l.includes('pip install .')) ? true : undefined),
      60_000,
      100,
    );
    await new Promise((r) => setTimeout(r, 1500));
    expect(tasks.get(taskId).state).toBe('working');
    tasks.cancel(taskId);
    await expect(running).rejects.toMatchObject({ code: 'INSTALL_CANCELLED', phase: 'dep_install' });
    expect(tasks.get(taskId).state).toBe('cancelled');
    expect(() => tasks.cancel(taskId)).toThrow(expect.objectContaining({ code: 'CONFLICT' }) as Error);
    expect(session.alive).toBe(true);
    await session.releaseIdentity(identity);
  });
});
