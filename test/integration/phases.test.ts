import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Supervisor } from '../../src/supervisor/supervisor.js';
import { copyFixture, tempFolder, type TempFolder } from '../helpers/folders.js';
import { buildWheel } from '../helpers/python-projects.js';
import { eventually } from '../helpers/runtime.js';
import { testConfig, testSupervisor, waitForState } from '../helpers/supervisor.js';

/** Every lifecycle phase, provoked for real and read back from get(name).error.phase. */
describe('failures are reported in their phase', () => {
  let sup: Supervisor;
  const folders: TempFolder[] = [];
  const fastFail = { restart: { maxRestarts: 0, backoffInitialMs: 100 } };

  beforeAll(async () => {
    // The operator allows the missing image: a server may only name images of box.allowedImages.
    sup = await testSupervisor(
      testConfig({ pingIntervalSec: 1, allowedImages: [inject('sandboxImage'), 'mcp-box-no-such-image:never'] }),
    );
  });
  afterAll(async () => {
    await sup.close();
    for (const f of folders) f.cleanup();
  });

  const failureOf = async (name: string, states: ('failed' | 'backoff')[] = ['failed']) => {
    const view = await waitForState(sup, name, states, 120_000);
    expect(view.error).toBeDefined();
    return view.error!;
  };

  it(
    'box_unavailable: the engine cannot be reached ' + '(retried until it is back, without spending the budget)',
    async () => {
      const offline = await testSupervisor(testConfig(), {
        runtimeOptions: { socketPath: '/nonexistent/docker.sock' },
      });
      try {
        offline.add('x', { command: 'true' });
        const error = await eventually(
          () =>
            offline.get('x').error?.attempt === 1 && offline.get('x').restarts >= 2
              ? offline.get('x').error
              : undefined,
          20_000,
        );
        expect(error).toMatchObject({ phase: 'box_unavailable', code: 'ENGINE_UNREACHABLE', retryable: true });
        expect(error?.nextRetryAt).toBeDefined();
        expect(offline.get('x').state).toMatch(/backoff|starting/);
      } finally {
        await offline.close();
      }
    },
  );

  it('box_unavailable: sandboxing disabled by config never runs on the host', async () => {
    const disabled = await testSupervisor(testConfig({ enabled: false }));
    try {
      disabled.add('x', { command: 'true' });
      const view = await waitForState(disabled, 'x', ['failed']);
      expect(view.error).toMatchObject({ phase: 'box_unavailable', code: 'BOX_DISABLED', retryable: false });
      expect(view.error?.nextRetryAt).toBeUndefined();
    } finally {
      await disabled.close();
    }
  });

  it('session_create: a missing image', async () => {
    sup.add('no-image', { command: 'true', box: { image: 'mcp-box-no-such-image:never', ...fastFail } });
    expect(await failureOf('no-image')).toMatchObject({
      phase: 'session_create',
      code: 'IMAGE_MISSING',
      retryable: false,
    });
  });

  it('workspace_stage: a folder outside the allowed roots', async () => {
    sup.add('outside', { command: 'python3', args: ['server.py'], box: { hostPath: '/opt' } });
    const error = await failureOf('outside');
    expect(error).toMatchObject({ phase: 'workspace_stage', code: 'HOST_PATH_DENIED', retryable: false });
    expect(error.message).toContain('/opt');
    expect(error.nextRetryAt).toBeUndefined();
  });

  it("dep_install: a broken requirement, with pip's own error", async () => {
    const f = tempFolder();
    folders.push(f);
    f.mkdir('wheels');
    f.write('requirements.txt', 'no-such-package-mcpbox==1.0\n');
    f.write('server.py', 'print("never")\n');
    sup.add('broken-req', {
      command: 'python',
      args: [`${f.path}/server.py`],
      box: { install: { noIndex: true, findLinks: ['wheels'] }, ...fastFail },
    });
    const error = await failureOf('broken-req');
    expect(error).toMatchObject({ phase: 'dep_install', code: 'INSTALL_FAILED' });
    expect(error.message).toContain('No matching distribution found for no-such-package-mcpbox==1.0');
  });

  it('process_start: a missing command, with exit 127 in the record', async () => {
    sup.add('no-command', { command: 'definitely-not-a-command-mcpbox', box: fastFail });
    const error = await failureOf('no-command');
    expect(error).toMatchObject({ phase: 'process_start', code: 'PROCESS_START_FAILED', exitCode: 127 });
    expect(error.stderrTail).toMatch(/definitely-not-a-command-mcpbox/);
  });

  it(
    'relay_connect: an external client with a wrong ' + 'token is refused with 401, and the server stays ready',
    async () => {
      sup.add('guarded', { command: 'cat', box: { client: 'external', ...fastFail } });
      const view = await waitForState(sup, 'guarded', ['ready']);
      const status = await new Promise<number>((resolve) => {
        // The route that takes the API token (the record's capability URL takes none).
        const byToken = `${(view.relay?.url ?? '').replace(/\/v1\/relay\/.*$/, '')}/v1/sessions/${view.session}/processes/guarded/ws`;
        const ws = new WebSocket(byToken, 'mcp', {
          headers: { Authorization: 'Bearer not-the-token-at-all-0000' },
        });
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => resolve(101));
        ws.on('error', () => undefined);
      });
      expect(status).toBe(401);
      expect(sup.get('guarded').state).toBe('ready');
    },
  );

  it('mcp_init: a server that never answers initialize, with its stderr tail', async () => {
    sup.add('silent', {
      command: 'python3',
      args: [
        '-c',
        'import sys, time\nprint("loading a very slow model", file=sys.stderr, flush=True)\ntime.sleep(1000)',
      ],
      box: { startupTimeoutSec: 4, ...fastFail },
    });
    const error = await failureOf('silent');
    expect(error).toMatchObject({ phase: 'mcp_init', code: 'MCP_INIT_TIMEOUT' });
    expect(error.stderrTail).toContain('loading a very slow model');
    expect(error.durationMs).toBeGreaterThanOrEqual(3500);
  });

  it('runtime: a server that exits after init, with its exit code and stderr tail', async () => {
    const f = copyFixture('python-mcp');
    folders.push(f);
    buildWheel(`${f.path}/wheels`, 'mcpboxgreet', '1.0', 'hi');
    sup.add('exits', {
      command: 'python3',
      args: [`${f.path}/server.py`],
      env: { EXIT_AFTER_INIT: '7' },
      box: { install: { noIndex: true, findLinks: ['wheels'] }, ...fastFail },
    });
    const error = await failureOf('exits');
    expect(error).toMatchObject({ phase: 'runtime', code: 'PROCESS_EXITED', exitCode: 7, retryable: true });
    expect(error.stderrTail).toContain('exiting after init as asked');
  });

  it('runtime: a memory bomb is reported with oomKilled', async () => {
    const f = copyFixture('node-mcp');
    folders.push(f);
    sup.add('bomb', { command: 'node', args: [`${f.path}/server.mjs`], box: { memoryMb: 256, ...fastFail } });
    await waitForState(sup, 'bomb', ['ready']);
    await sup.callTool('bomb', 'allocate', { mb: 2048 }, { timeoutMs: 60_000 }).catch(() => undefined);
    const error = await failureOf('bomb');
    expect(error).toMatchObject({
      phase: 'runtime',
      code: 'OOM_KILLED',
      oomKilled: true,
      exitCode: 137,
      signal: 'SIGKILL',
    });
  });

  it('tool_call: a tool that hangs (the server stays ready)', async () => {
    const f = copyFixture('node-mcp');
    folders.push(f);
    sup.add('hangs', { command: 'node', args: [`${f.path}/server.mjs`], box: { recycleAfterTimeouts: 0 } });
    await waitForState(sup, 'hangs', ['ready']);
    await expect(sup.callTool('hangs', 'sleep', { ms: 60_000 }, { timeoutMs: 800 })).rejects.toMatchObject({
      phase: 'tool_call',
      code: 'TOOL_TIMEOUT',
    });
    expect(sup.get('hangs')).toMatchObject({ state: 'ready', error: { phase: 'tool_call', code: 'TOOL_TIMEOUT' } });
  });

  it('runtime: a hung server is found by the ping and restarted as unresponsive', async () => {
    const f = copyFixture('node-mcp');
    folders.push(f);
    sup.add('hung', {
      command: 'node',
      args: [`${f.path}/server.mjs`],
      box: { restart: { maxRestarts: 1, backoffInitialMs: 100 } },
    });
    const ready = await waitForState(sup, 'hung', ['ready']);
    void sup.callTool('hung', 'block', { ms: 120_000 }, { timeoutMs: 120_000 }).catch(() => undefined);
    const error = await eventually(
      () => (sup.get('hung').error?.code === 'SERVER_UNRESPONSIVE' ? sup.get('hung').error : undefined),
      30_000,
    );
    expect(error).toMatchObject({ phase: 'runtime', code: 'SERVER_UNRESPONSIVE', retryable: true });
    const back = await waitForState(sup, 'hung', ['ready'], 60_000);
    expect(back.pid).not.toBe(ready.pid);
  });

  it('a crash loop spends its restart budget and ends in failed, with no nextRetryAt', async () => {
    // Each attempt fails differently (another word on stderr), so only the budget stops it.
    const script =
      'n=$(cat "$TMPDIR/n" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$TMPDIR/n"; ' +
      'case $n in 1) w=alpha;; 2) w=bravo;; *) w=charlie;; esac; echo "crashing on purpose: $w" >&2; exit 2';
    sup.add('crashloop', {
      command: 'sh',
      args: ['-c', script],
      box: { restart: { maxRestarts: 2, backoffInitialMs: 100, backoffMaxMs: 200 } },
    });
    const view = await waitForState(sup, 'crashloop', ['failed']);
    expect(view.error).toMatchObject({ attempt: 3, maxAttempts: 3, exitCode: 2, retryable: true });
    expect(view.error?.sameFailureCount).toBeUndefined();
    expect(view.error?.nextRetryAt).toBeUndefined();
    expect(view.restarts).toBe(2);
    expect(view.error?.stderrTail).toContain('crashing on purpose: charlie');
  });

  it(
    'stops early, not retryable, when start attempts fail ' + 'the same way twice; a restart gives a fresh budget',
    async () => {
      const script = 'echo "KeyError: API_KEY is required (pid $$)" >&2; exit 1';
      sup.add('hopeless', {
        command: 'sh',
        args: ['-c', script],
        box: { restart: { maxRestarts: 5, backoffInitialMs: 100, backoffMaxMs: 200 } },
      });
      const view = await waitForState(sup, 'hopeless', ['failed']);
      expect(view.error).toMatchObject({
        code: 'PROCESS_EXITED',
        exitCode: 1,
        retryable: false,
        attempt: 2,
        maxAttempts: 6,
        sameFailureCount: 2,
      });
      expect(['process_start', 'relay_connect', 'mcp_init']).toContain(view.error?.phase);
      expect(view.error?.message).toMatch(/the same failure 2 attempts in a row: not retrying/);
      expect(view.restarts).toBe(1);
      const restarted = await sup.restart('hopeless');
      expect(restarted.error).toBeUndefined();
      const again = await waitForState(sup, 'hopeless', ['failed']);
      expect(again.error).toMatchObject({ attempt: 2, sameFailureCount: 2 });
      expect(again.restarts).toBe(3);
    },
  );
});
