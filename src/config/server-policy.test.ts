import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { thrown } from '../../test/helpers/thrown.js';
import { parseConfig, parseServerDefinition } from './parse-config.js';
import { resolveServer } from './resolve-server.js';
import type { GlobalBoxOptions } from './schema.js';

let base: string;
let pem: string;
beforeAll(() => {
  base = realpathSync(mkdtempSync(join(tmpdir(), 'mcp-box-policy-')));
  mkdirSync(join(base, 'proj', 'sub'), { recursive: true });
  writeFileSync(join(base, 'proj', 'server.py'), '');
  pem = join(base, 'ca.pem');
  writeFileSync(pem, '# corporate CA\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
  writeFileSync(join(base, 'not-a-ca.txt'), 'API_TOKEN=secret\n');
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

/** The config error of a server whose `box` asks for `box` under the operator's `global`. */
const refusal = (box: Record<string, unknown>, global: Record<string, unknown> = {}): string =>
  thrown(() => parseConfig({ mcpServers: { x: { command: 'cat', box } }, box: global })).message;

describe('a server definition may narrow the operator box settings, never widen them', () => {
  it.each([
    {
      box: { memoryMb: 8192 },
      global: { memoryMb: 1536 },
      says: "mcpServers.x.box.memoryMb: 8192 is above the operator's cap of 1536 (box.memoryMb)",
    },
    {
      box: { memoryMb: 2048 },
      global: {},
      says: "mcpServers.x.box.memoryMb: 2048 is above the operator's cap of 1536 (box.memoryMb)",
    },
    {
      box: { cpus: 4 },
      global: { cpus: 2 },
      says: "mcpServers.x.box.cpus: 4 is above the operator's cap of 2 (box.cpus)",
    },
    {
      box: { pidsLimit: 4096 },
      global: {},
      says: "mcpServers.x.box.pidsLimit: 4096 is above the operator's cap of 256 (box.pidsLimit)",
    },
    {
      box: { tmpfsMb: 4096 },
      global: { tmpfsMb: 128 },
      says: "mcpServers.x.box.tmpfsMb: 4096 is above the operator's cap of 128 (box.tmpfsMb)",
    },
    {
      box: { processLimit: 4000 },
      global: { processLimit: 64 },
      says: "mcpServers.x.box.processLimit: 4000 is above the operator's cap of 64 (box.processLimit)",
    },
    {
      box: { processLimit: 300 },
      global: {},
      says: "mcpServers.x.box.processLimit: 300 is above the operator's cap of 128 (box.processLimit)",
    },
    {
      box: { processLimit: 300 },
      global: { pidsLimit: 200, limits: { processLimit: 1000 } },
      says: "mcpServers.x.box.processLimit: 300 is above the operator's cap of 200 (box.pidsLimit)",
    },
    {
      box: { pidsLimit: 64, processLimit: 100 },
      global: {},
      says: "mcpServers.x.box.processLimit: 100 is above the operator's cap of 64 (mcpServers.x.box.pidsLimit)",
    },
    {
      box: { diskMb: 100_000 },
      global: {},
      says: "mcpServers.x.box.diskMb: 100000 is above the operator's cap of 2048 (box.diskMb)",
    },
    {
      box: { diskMb: 512 },
      global: { diskMb: 256 },
      says: "mcpServers.x.box.diskMb: 512 is above the operator's cap of 256 (box.diskMb)",
    },
    {
      box: { diskFiles: 10_000_000 },
      global: { limits: { diskFiles: 500_000 } },
      says: "mcpServers.x.box.diskFiles: 10000000 is above the operator's cap of 500000 (box.limits.diskFiles)",
    },
    {
      box: { installTimeoutSec: 86_400 },
      global: {},
      says: "mcpServers.x.box.installTimeoutSec: 86400 is above the operator's cap of 300 (box.installTimeoutSec)",
    },
    {
      box: { startupTimeoutSec: 3600 },
      global: { startupTimeoutSec: 90 },
      says: "mcpServers.x.box.startupTimeoutSec: 3600 is above the operator's cap of 90 (box.startupTimeoutSec)",
    },
    {
      box: { toolTimeoutSec: 3600 },
      global: {},
      says: "mcpServers.x.box.toolTimeoutSec: 3600 is above the operator's cap of 60 (box.toolTimeoutSec)",
    },
    {
      box: { stageLimits: { maxBytes: 10 * 1024 ** 3 } },
      global: {},
      says:
        `mcpServers.x.box.stageLimits.maxBytes: ${10 * 1024 ** 3} ` +
        `is above the operator's cap of ${256 * 1024 * 1024} (box.stageLimits.maxBytes)`,
    },
    {
      box: { stageLimits: { maxFiles: 1e6 } },
      global: { stageLimits: { maxFiles: 100 } },
      says:
        "mcpServers.x.box.stageLimits.maxFiles: 1000000 is above the operator's cap of 100 " +
        '(box.stageLimits.maxFiles)',
    },
    {
      box: { memoryMb: 4096 },
      global: { memoryMb: 1024, limits: { memoryMb: 2048 } },
      says: "mcpServers.x.box.memoryMb: 4096 is above the operator's cap of 2048 (box.limits.memoryMb)",
    },
    {
      box: { readOnlyRootfs: false },
      global: {},
      says:
        "mcpServers.x.box.readOnlyRootfs: false is refused: the operator's root filesystem is read-only " +
        '(box.readOnlyRootfs)',
    },
    {
      box: { network: 'on' },
      global: { network: 'off' },
      says:
        'mcpServers.x.box.network: "on" is refused: the operator turned the network off (box.network; ' +
        'box.allowNetworkOverride allows it)',
    },
    {
      box: { image: 'alpine:latest' },
      global: {},
      says:
        'mcpServers.x.box.image: "alpine:latest" is not an allowed image (box.allowedImages: ' +
        '"mcp-box-sandbox:latest")',
    },
    {
      box: { image: 'other:1' },
      global: { image: 'mine:1', allowedImages: ['mine:1', 'mine:2'] },
      says: 'mcpServers.x.box.image: "other:1" is not an allowed image (box.allowedImages: "mine:1", "mine:2")',
    },
    {
      box: { caCertsFile: '/proc/self/environ' },
      global: {},
      says: 'mcpServers.x.box.caCertsFile: set by the operator only (box.caCertsFile)',
    },
    {
      box: { caCertsFile: null },
      global: {},
      says: 'mcpServers.x.box.caCertsFile: set by the operator only (box.caCertsFile)',
    },
    {
      box: { install: { indexUrl: 'https://user:pw@evil.example/simple' } },
      global: {},
      says: 'mcpServers.x.box.install.indexUrl: set by the operator only (box.install.indexUrl)',
    },
    {
      box: { install: { extraIndexUrls: ['https://evil.example/simple'] } },
      global: {},
      says: 'mcpServers.x.box.install.extraIndexUrls: set by the operator only (box.install.extraIndexUrls)',
    },
    {
      box: { install: { trustedHosts: ['evil.example'] } },
      global: {},
      says: 'mcpServers.x.box.install.trustedHosts: set by the operator only (box.install.trustedHosts)',
    },
    {
      box: { install: { npmRegistry: 'https://evil.example/' } },
      global: {},
      says: 'mcpServers.x.box.install.npmRegistry: set by the operator only (box.install.npmRegistry)',
    },
    {
      box: { install: { findLinks: ['/etc'] } },
      global: {},
      says: 'mcpServers.x.box.install.findLinks.0: "/etc" must be a relative path inside the server\'s folder',
    },
    {
      box: { install: { findLinks: ['../other/wheels'] } },
      global: {},
      says:
        'mcpServers.x.box.install.findLinks.0: "../other/wheels" ' +
        "must be a relative path inside the server's folder",
    },
  ])('refuses $box over $global', ({ box, global, says }) => {
    const message = refusal(box, global);
    expect(message).toContain(says);
  });

  it('names every refused field at once, with its details', () => {
    const error = thrown(() =>
      parseConfig({ mcpServers: { x: { command: 'cat', box: { memoryMb: 9999, readOnlyRootfs: false } } } }),
    );
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', phase: 'config' });
    expect((error.details as { problems: { path: string }[] }).problems.map((p) => p.path)).toEqual([
      'mcpServers.x.box.memoryMb',
      'mcpServers.x.box.readOnlyRootfs',
    ]);
  });

  it('refuses the same override added at run time (resolveServer, as POST /v1/servers does)', () => {
    const def = parseServerDefinition(
      { command: 'cat', box: { memoryMb: 8192, caCertsFile: '/proc/self/environ' } },
      'api',
    );
    const message = thrown(() => resolveServer('api', def, { memoryMb: 1536 }, base)).message;
    expect(message).toContain("mcpServers.api.box.memoryMb: 8192 is above the operator's cap of 1536 (box.memoryMb)");
    expect(message).toContain('mcpServers.api.box.caCertsFile: set by the operator only (box.caCertsFile)');
  });

  it(
    'keeps every narrowing: smaller limits, network off, a read-only rootfs, the operator image, no index, own ' +
      'find-links, restart and client settings',
    () => {
      const global: GlobalBoxOptions = {
        image: 'mine:1',
        memoryMb: 1024,
        pidsLimit: 512,
        network: 'on',
        readOnlyRootfs: false,
        processLimit: 128,
        install: { npmRegistry: 'https://registry.example/' },
      };
      const config = parseConfig({
        box: global,
        mcpServers: {
          x: {
            command: 'cat',
            box: {
              image: 'mine:1',
              memoryMb: 512,
              cpus: 0.5,
              pidsLimit: 128,
              processLimit: 64,
              tmpfsMb: 16,
              network: 'off',
              readOnlyRootfs: true,
              installTimeoutSec: 60,
              startupTimeoutSec: 30,
              toolTimeoutSec: 10,
              stageLimits: { maxBytes: 1024, maxFiles: 10 },
              install: { noIndex: true, findLinks: ['wheels', './more/wheels'] },
              restart: { maxRestarts: 1, backoffInitialMs: 100 },
              client: 'external',
              pingIntervalSec: 0,
              recycleAfterTimeouts: 0,
            },
          },
        },
      });
      const spec = resolveServer('x', config.mcpServers.x ?? { command: 'cat' }, config.box, base);
      expect(spec.profile).toEqual({
        image: 'mine:1',
        network: 'off',
        cpus: 0.5,
        memoryMb: 512,
        pidsLimit: 128,
        readOnlyRootfs: true,
        tmpfsMb: 16,
      });
      expect(spec.install).toEqual({
        npmRegistry: 'https://registry.example/',
        noIndex: true,
        findLinks: ['wheels', './more/wheels'],
      });
      expect(spec.processLimit).toBe(64);
      expect(spec.disk).toEqual({ maxBytes: 2048 * 1024 * 1024, maxEntries: 200_000 });
    },
  );

  it('a server may narrow its disk quota; the quota is in bytes and entries', () => {
    const config = parseConfig({
      box: { diskMb: 1024 },
      mcpServers: { x: { command: 'cat', box: { diskMb: 64, diskFiles: 5000 } } },
    });
    expect(resolveServer('x', config.mcpServers.x ?? { command: 'cat' }, config.box, base).disk).toEqual({
      maxBytes: 64 * 1024 * 1024,
      maxEntries: 5000,
    });
  });

  it(
    'lets the operator widen: box.limits maxima above the global values, ' +
      'box.allowNetworkOverride, box.allowedImages',
    () => {
      const config = parseConfig({
        box: {
          memoryMb: 512,
          limits: { memoryMb: 4096, pidsLimit: 1024 },
          network: 'off',
          allowNetworkOverride: true,
          allowedImages: ['mcp-box-sandbox:latest', 'gpu:1'],
        },
        mcpServers: { x: { command: 'cat', box: { memoryMb: 4096, pidsLimit: 1024, network: 'on', image: 'gpu:1' } } },
      });
      expect(resolveServer('x', config.mcpServers.x ?? { command: 'cat' }, config.box, base).profile).toMatchObject({
        memoryMb: 4096,
        pidsLimit: 1024,
        network: 'on',
        image: 'gpu:1',
      });
    },
  );

  it('refuses an operator whose own values are above its own box.limits', () => {
    expect(thrown(() => parseConfig({ box: { memoryMb: 4096, limits: { memoryMb: 2048 } } })).message).toContain(
      "box.memoryMb: 4096 is above the operator's cap of 2048 (box.limits.memoryMb)",
    );
  });
});

describe('the operator CA bundle', () => {
  it('must be PEM with at least one certificate', () => {
    const def = { command: 'cat' };
    expect(resolveServer('x', def, { caCertsFile: pem }, base).caCertsFile).toBe(pem);
    expect(thrown(() => resolveServer('x', def, { caCertsFile: 'not-a-ca.txt' }, base)).message).toContain(
      `box.caCertsFile: ${join(base, 'not-a-ca.txt')} is not a PEM certificate bundle ` +
        `(no -----BEGIN CERTIFICATE----- block)`,
    );
    expect(thrown(() => resolveServer('x', def, { caCertsFile: '/proc/self/environ' }, base)).message).toContain(
      'box.caCertsFile: /proc/self/environ is not a PEM certificate bundle',
    );
    expect(thrown(() => resolveServer('x', def, { caCertsFile: 'missing.pem' }, base)).message).toContain(
      `box.caCertsFile: cannot read ${join(base, 'missing.pem')}`,
    );
  });
});

describe('cwd stays inside the server folder', () => {
  const folderDef = (cwd: string): ReturnType<typeof parseServerDefinition> =>
    parseServerDefinition({ command: 'python3', args: ['server.py'], cwd, box: { hostPath: 'proj' } }, 'x');

  it.each(['/proc/self/fd/8', '/proc/self/cwd', '/etc', '../', 'sub/../../..', `${'/'}tmp`])('refuses %s', (cwd) => {
    const error = thrown(() => resolveServer('x', folderDef(cwd), {}, base));
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', phase: 'config' });
    expect(error.message).toContain(`mcpServers.x.cwd: ${JSON.stringify(cwd)}`);
  });

  it('takes a relative cwd, or an absolute one inside the folder, as a path in the folder', () => {
    expect(resolveServer('x', folderDef('sub'), {}, base).cwd).toBe(join(base, 'proj', 'sub'));
    expect(resolveServer('x', folderDef('./sub/'), {}, base).cwd).toBe(join(base, 'proj', 'sub'));
    expect(resolveServer('x', folderDef(join(base, 'proj', 'sub')), {}, base).cwd).toBe(join(base, 'proj', 'sub'));
    expect(resolveServer('x', folderDef('.'), {}, base).cwd).toBe(join(base, 'proj'));
  });

  it('checks an inferred folder the same way, and a server with no folder may only use its workspace', () => {
    const inferred = parseServerDefinition(
      { command: 'python3', args: [join(base, 'proj', 'server.py')], cwd: '/proc/self/fd/8' },
      'x',
    );
    expect(thrown(() => resolveServer('x', inferred, {}, base)).message).toContain(
      'mcpServers.x.cwd: "/proc/self/fd/8"',
    );
    const none = (cwd: string): ReturnType<typeof parseServerDefinition> =>
      parseServerDefinition({ command: 'cat', cwd }, 'x');
    expect(thrown(() => resolveServer('x', none('/proc/self/fd/8'), {}, base)).message).toContain(
      'mcpServers.x.cwd: "/proc/self/fd/8"',
    );
    expect(thrown(() => resolveServer('x', none('sub'), {}, base)).message).toContain('mcpServers.x.cwd: "sub"');
    expect(resolveServer('x', none('.'), {}, base).cwd).toBeUndefined();
  });
});

describe('the folder a server gets', () => {
  it(
    'is fixed when the server is added: inferred from the ' + 'command line, or none for servers added through the API',
    () => {
      const def = parseServerDefinition({ command: 'python3', args: [join(base, 'proj', 'server.py')] }, 'x');
      expect(resolveServer('x', def, {}, base).hostPath).toBe(join(base, 'proj'));
      expect(resolveServer('x', def, {}, base, { inferFolder: false }).hostPath).toBe('');
      const explicit = parseServerDefinition(
        { command: 'python3', args: ['server.py'], box: { hostPath: 'proj' } },
        'x',
      );
      expect(resolveServer('x', explicit, {}, base, { inferFolder: false }).hostPath).toBe(join(base, 'proj'));
    },
  );
});
