/**
 * Redaction that is exact, against a real `serve`: a server's ordinary env values stay readable
 * (its name and messages are not turned into `***`), while a secret (an env key that names one) is
 * gone from every output — the failure record, the log, the history, the state files — raw,
 * base64-encoded and URL-encoded; and the CLI never passes terminal control sequences through.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { tempFolder, type TempFolder } from '../helpers/folders.js';
import { eventually } from '../helpers/runtime.js';
import { runCli, serveApi, type ServeProcess, startServeProcess, stopAllServes } from '../helpers/serve-process.js';
import { HOST_CA_BUNDLE } from '../helpers/supervisor.js';

const SECRET = 'tok/sekrit+98765=';
/** A secret under a name that does not say so: the definition marks it (`secretEnv`). */
const MARKED = 'postgres://app:hunter2-db@db/app';
const SCRIPT = [
  'import os, sys, time, base64, urllib.parse',
  "t = os.environ['API_TOKEN']",
  "print('probe: %s mode' % os.environ['PROBE_MODE'], file=sys.stderr)",
  "print('raw', t, file=sys.stderr)",
  "print('marked', os.environ['DSN'], file=sys.stderr)",
  "print('b64', base64.b64encode(('user:' + t).encode()).decode(), file=sys.stderr)",
  "print('url', urllib.parse.quote(t, safe=''), file=sys.stderr)",
  "print('\\x1b]52;c;ZWNobyBwd25lZA==\\x07osc \\x1b[31mred\\x1b[0m', file=sys.stderr)",
  'sys.stderr.flush()',
  'time.sleep(1.5)',
  'sys.exit(3)',
].join('\n');

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((n) =>
    statSync(join(dir, n)).isDirectory() ? filesUnder(join(dir, n)) : [join(dir, n)],
  );
}

describe('redaction at every output boundary', () => {
  let folder: TempFolder;
  let serve: ServeProcess;
  let token: string;
  const api = serveApi(
    () => serve.url,
    () => token,
  );
  const forms = [
    MARKED,
    SECRET,
    encodeURIComponent(SECRET),
    Buffer.from(`user:${SECRET}`).toString('base64').slice(8, -4),
  ];

  beforeAll(async () => {
    folder = tempFolder();
    const configPath = `${folder.path}/mcp-box.json`;
    writeFileSync(
      configPath,
      JSON.stringify({
        mcpServers: {
          crash: {
            command: 'python3',
            args: ['-c', SCRIPT],
            env: { PROBE_MODE: 'crash', API_TOKEN: SECRET, DSN: MARKED },
            secretEnv: ['DSN'],
            box: { client: 'external' },
          },
        },
        box: {
          image: inject('sandboxImage'),
          memoryMb: 512,
          allowedRoots: [tmpdir()],
          caCertsFile: HOST_CA_BUNDLE,
          restart: { maxRestarts: 0 },
        },
        server: { port: 0 },
      }),
    );
    serve = await startServeProcess(configPath);
    token = readFileSync(`${folder.path}/.mcp-box/token`, 'utf8').trim();
    await eventually(
      async () => ((await api('GET', '/v1/servers/crash')).json.state === 'failed' ? true : undefined),
      60_000,
      200,
    );
  }, 120_000);
  afterAll(async () => {
    await stopAllServes();
    folder.cleanup();
  });

  it(
    'keeps ordinary values readable and removes every ' + 'form of the secret from the API and the state files',
    async () => {
      const server = (await api('GET', '/v1/servers/crash')).json as {
        error: { message: string; stderrTail: string; exitCode: number };
      };
      expect(server.error.message).toContain('"crash" exited with code 3');
      expect(server.error.exitCode).toBe(3);
      expect(server.error.stderrTail).toContain('probe: crash mode');
      expect(server.error.stderrTail).toContain('raw ***');
      expect(server.error.stderrTail).toContain('marked ***');
      const outputs = [
        JSON.stringify(server),
        JSON.stringify((await api('GET', '/v1/servers/crash/logs?limit=500')).json),
        JSON.stringify((await api('GET', '/v1/servers/crash/history')).json),
        ...filesUnder(`${folder.path}/.mcp-box`)
          .filter((f) => !f.endsWith('/token'))
          .map((f) => readFileSync(f, 'utf8')),
      ];
      for (const text of outputs)
        for (const form of forms) expect(text.includes(form), `${form} in ${text.slice(0, 80)}`).toBe(false);
      expect(outputs.join('\n')).toContain('b64 ');
    },
  );

  it('strips terminal control sequences from tenant text in the CLI', () => {
    const logs = runCli(['logs', 'crash', '--url', serve.url], folder.path);
    expect(logs.code).toBe(0);
    expect(logs.out).toContain('osc red');
    // eslint-disable-next-line no-control-regex
    expect(logs.out).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f]/);
    const status = runCli(['status', '--url', serve.url], folder.path);
    expect(status.out).toMatch(/crash\s+failed/);
  });
});
