import { execFileSync } from 'node:child_process';
import { truncateSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activationEnv } from '../../src/install/detect-install.js';
import { BASE_PATH } from '../../src/install/install-dependencies.js';
import type { Identity, Runtime, Session } from '../../src/runtime/types.js';
import { stageFolder } from '../../src/workspace/stage-folder.js';
import { tempFolder, type TempFolder } from '../helpers/folders.js';
import { testProfile, testRuntime } from '../helpers/runtime.js';

describe('workspace staging', () => {
  let runtime: Runtime;
  let session: Session;
  let identity: Identity;
  const folders: TempFolder[] = [];
  const folder = (): TempFolder => {
    const f = tempFolder();
    folders.push(f);
    return f;
  };

  beforeAll(async () => {
    runtime = testRuntime();
    session = await runtime.ensureSession(testProfile());
    identity = await session.createIdentity();
  });
  afterAll(async () => {
    await runtime.close();
    for (const f of folders) f.cleanup();
  });

  it(
    'stages files at the workspace path, owned by the server uid, with normalised modes ' +
      'and the links that stay inside',
    async () => {
      const f = folder();
      f.write('server.py', 'print("hi")\n');
      f.write('bin/run.sh', '#!/bin/sh\necho run\n', 0o755);
      f.write('pkg/data/deep.txt', 'deep\n');
      f.write('suid-helper', '#!/bin/sh\nid -u\n', 0o4755);
      f.link('pkg/latest', 'data/deep.txt');
      f.link('passwd', '/etc/passwd');
      f.link('escape', '../../../../etc/shadow');
      f.write('.git/config', 'secret git config');
      f.write('__pycache__/x.pyc', 'bytecode');
      f.write('notes/.mcpboxignore-me.log', 'ignored by rule');
      f.write('.mcpboxignore', '# local rules\n*.log\n');

      const result = await stageFolder(session, identity, { hostPath: f.path });
      expect(result.files).toBe(5); // server.py, run.sh, deep.txt, suid-helper, .mcpboxignore
      expect(result.links).toBe(1);
      expect(result.dropped.map((d) => d.rel).sort()).toEqual(['escape', 'passwd']);
      expect(result.dropped.find((d) => d.rel === 'passwd')?.reason).toMatch(/absolute link/);

      const seen = await session.exec({
        identity,
        cmd: [
          '/bin/sh',
          '-c',
          'pwd -P; find . | sort; stat -c "%a %u %n" server.py bin/run.sh suid-helper .; cat pkg/latest; ./bin/run.sh',
        ],
      });
      expect(seen.exitCode).toBe(0);
      const lines = seen.stdout.split('\n');
      expect(lines[0]).toBe(`${identity.root}/ws.${result.generation}`);
      expect(seen.stdout).not.toMatch(/\.git|__pycache__|passwd|escape|\.log/);
      // Private to the uid (umask 077), the executable bit kept, the setuid bit gone.
      expect(seen.stdout).toContain(`600 ${identity.uid} server.py`);
      expect(seen.stdout).toContain(`700 ${identity.uid} bin/run.sh`);
      expect(seen.stdout).toContain(`700 ${identity.uid} suid-helper`);
      expect(seen.stdout).toContain(`700 ${identity.uid} .`);
      expect(seen.stdout).toContain('deep\nrun\n');
    },
  );

  it('refuses a FIFO without opening it, and stays within a few seconds', async () => {
    const f = folder();
    f.write('ok.txt', 'fine');
    execFileSync('mkfifo', [`${f.path}/pipe`]);
    const started = Date.now();
    await expect(stageFolder(session, identity, { hostPath: f.path })).rejects.toMatchObject({
      code: 'STAGE_FAILED',
      phase: 'workspace_stage',
      message: expect.stringContaining('"pipe": it is a FIFO') as unknown,
    });
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('refuses a 20 GB sparse file on its declared size, before reading it', async () => {
    const f = folder();
    const big = f.write('huge.bin', '');
    truncateSync(big, 20 * 1024 ** 3);
    const started = Date.now();
    await expect(stageFolder(session, identity, { hostPath: f.path })).rejects.toMatchObject({
      code: 'STAGE_LIMIT_EXCEEDED',
      phase: 'workspace_stage',
    });
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('enforces file-count and depth budgets', async () => {
    const f = folder();
    for (let i = 0; i < 30; i++) f.write(`f${i}.txt`, String(i));
    await expect(
      stageFolder(session, identity, { hostPath: f.path, limits: { maxBytes: 1e9, maxFiles: 10, maxDepth: 32 } }),
    ).rejects.toMatchObject({
      code: 'STAGE_LIMIT_EXCEEDED',
      message: expect.stringContaining('more than 10 files') as unknown,
    });
    const deep = folder();
    deep.write(`${Array.from({ length: 12 }, (_, i) => `d${i}`).join('/')}/x.txt`, 'x');
    await expect(
      stageFolder(session, identity, { hostPath: deep.path, limits: { maxBytes: 1e9, maxFiles: 100, maxDepth: 8 } }),
    ).rejects.toMatchObject({
      code: 'STAGE_LIMIT_EXCEEDED',
      message: expect.stringContaining('folder levels') as unknown,
    });
  });

  it('a link planted by a previous process does not redirect a restage', async () => {
    const victim = await session.createIdentity();
    const f = folder();
    f.write('lib/module.py', 'A = 1\n');
    await stageFolder(session, identity, { hostPath: f.path });
    // The tenant replaces its staged `lib` with a link to another tenant's workspace and to /etc,
    // and leaves a process running that would re-plant it.
    await session.exec({
      identity,
      cmd: [
        '/bin/sh',
        '-c',
        `cd "$HOME/../workspace" && rm -rf lib && ln -s ${victim.workspace} lib && ln -s /etc etc`,
      ],
    });
    const planter = await session.startProcess({
      id: 'planter',
      identity,
      cmd: [
        '/bin/sh',
        '-c',
        `while true; do ln -sfn ${victim.workspace} "$HOME/../workspace/lib" 2>/dev/null; sleep 0.01; done`,
      ],
    });
    f.write('lib/module.py', 'A = 2\n');
    f.write('etc/passwd', 'not the real one\n');
    const restaged = await stageFolder(session, identity, { hostPath: f.path });
    // Every process of the uid is killed before extraction.
    expect(await planter.exited).toMatchObject({ signal: 'SIGKILL', reason: 'exited' });
    const check = await session.exec({
      identity,
      cmd: ['/bin/sh', '-c', 'cat lib/module.py; test -L lib && echo LINK; cat etc/passwd'],
    });
    expect(check.stdout).toBe('A = 2\nnot the real one\n');
    const victimView = await session.exec({ identity: victim, cmd: ['/bin/sh', '-c', 'ls -A .'] });
    expect(victimView.stdout.trim()).toBe('');
    const etc = await session.exec({ cmd: ['/bin/sh', '-c', 'head -1 /etc/passwd'] });
    expect(etc.stdout).toMatch(/^root:/);
    expect(restaged.generation).not.toBe('');
    await session.releaseIdentity(victim);
  });

  it('stages a 1,000-file folder and reports the time', async () => {
    const f = folder();
    for (let i = 0; i < 1000; i++) f.write(`src/m${i % 20}/file${i}.py`, `# file ${i}\n${'x = 1\n'.repeat(20)}`);
    const result = await stageFolder(session, identity, { hostPath: f.path });
    expect(result.files).toBe(1000);
    const count = await session.exec({ identity, cmd: ['/bin/sh', '-c', 'find . -type f | wc -l'] });
    expect(count.stdout.trim()).toBe('1000');
    console.log(`[measure] staging 1,000 files (${result.bytes} bytes): ${result.durationMs} ms`);
  });

  it('puts the configured CA bundle at <root>/ca.pem, after the image bundle', async () => {
    const f = folder();
    const ca = `${f.path}/../extra-ca.pem`;
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMCPBOXTESTCA\n-----END CERTIFICATE-----\n');
    const result = await stageFolder(session, identity, { hostPath: f.path, caCertsFile: ca });
    expect(result.caBundle).toBe(`${identity.root}/ca.pem`);
    const bundle = await session.exec({
      identity,
      cmd: [
        '/bin/sh',
        '-c',
        `grep -c "BEGIN CERTIFICATE" ${identity.root}/ca.pem; tail -2 ${identity.root}/ca.pem | head -1; ls -A`,
      ],
    });
    expect(Number(bundle.stdout.split('\n')[0])).toBeGreaterThan(10);
    expect(bundle.stdout).toContain('MCPBOXTESTCA');
    expect(bundle.stdout).not.toContain('.mcp-box-stage');
  });

  it('lets Node in the session trust box.caCertsFile through the staged bundle (HTTPS, a cert it signed)', async () => {
    const f = folder();
    // A CA of the test's own and a localhost certificate it signed, both made on the host.
    const dir = `${f.path}/../tls`;
    const ssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: f.path, stdio: 'ignore' });
    execFileSync('mkdir', ['-p', dir]);
    ssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=mcp-box test CA',
      '-keyout',
      `${dir}/ca.key`,
      '-out',
      `${dir}/ca.pem`,
    );
    ssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      '/CN=localhost',
      '-keyout',
      'server.key',
      '-out',
      `${dir}/s.csr`,
    );
    writeFileSync(`${dir}/san.ext`, 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
    ssl(
      'x509',
      '-req',
      '-in',
      `${dir}/s.csr`,
      '-CA',
      `${dir}/ca.pem`,
      '-CAkey',
      `${dir}/ca.key`,
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      `${dir}/san.ext`,
      '-out',
      'server.crt',
    );
    const result = await stageFolder(session, identity, { hostPath: f.path, caCertsFile: `${dir}/ca.pem` });
    // One Node process: an HTTPS server with that certificate, and a client of it using the default trust store.
    const probe = [
      "const fs = require('fs'), https = require('https');",
      "const s = https.createServer({ key: fs.readFileSync('server.key'), cert: fs.readFileSync('server.crt') },",
      "  (q, r) => r.end('trusted'));",
      "s.listen(0, '127.0.0.1', () => https.get({ host: 'localhost', port: s.address().port }, (res) => {",
      "  res.on('data', (d) => process.stdout.write(d)); res.on('end', () => process.exit(0));",
      "}).on('error', (e) => { process.stdout.write(e.code || e.message); process.exit(1); }));",
    ].join('\n');
    const paths = { root: identity.root, workspace: identity.workspace, caBundle: result.caBundle };
    const env = activationEnv(null, { python: null, node: null }, paths, BASE_PATH);
    const withBundle = await session.exec({ identity, cmd: ['node', '-e', probe], env });
    expect(withBundle.stdout).toBe('trusted');
    // The control: the same probe without the sandbox's CA settings does not trust the test CA.
    const without = await session.exec({ identity, cmd: ['node', '-e', probe], env: { PATH: BASE_PATH } });
    expect(without.exitCode).toBe(1);
    expect(without.stdout).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|UNABLE_TO_GET_ISSUER/);
  });
});
