/** Supervisor helpers for the Docker suite. */
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { inject } from 'vitest';
import { createSupervisor, type CreateSupervisorOptions } from '../../src/library.js';
import type { Supervisor } from '../../src/supervisor/supervisor.js';
import type { ServerState, ServerView, StatusEvent } from '../../src/supervisor/types.js';
import { copyFixture, type TempFolder } from './folders.js';
import { buildWheel } from './python-projects.js';
import { eventually } from './runtime.js';

export const HOST_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
let registry: string | undefined;
export function npmRegistry(): string {
  registry ??= execFileSync('npm', ['config', 'get', 'registry'], { encoding: 'utf8' }).trim();
  return registry;
}

/** A config with small, fast settings; `box` overrides merge over it. */
export function testConfig(
  box: Record<string, unknown> = {},
  servers: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    mcpServers: servers,
    box: {
      image: inject('sandboxImage'),
      memoryMb: 1024,
      pidsLimit: 512,
      allowedRoots: [tmpdir()],
      caCertsFile: HOST_CA_BUNDLE,
      install: { npmRegistry: npmRegistry() },
      restart: { backoffInitialMs: 200, backoffMaxMs: 1000, maxRestarts: 5 },
      startupTimeoutSec: 90,
      ...box,
    },
  };
}

export function testSupervisor(
  config: Record<string, unknown>,
  opts: CreateSupervisorOptions = {},
): Promise<Supervisor> {
  // With a relay port: the tests attach WebSocket clients to the relay URLs of the records.
  return createSupervisor(config, {
    runtimeOptions: { tag: inject('runTag') },
    configDir: tmpdir(),
    listen: true,
    ...opts,
  });
}

/** Waits until the server reaches one of `states` and returns its view. */
export function waitForState(
  sup: Supervisor,
  name: string,
  states: ServerState[],
  timeoutMs = 120_000,
): Promise<ServerView> {
  return eventually(
    () => {
      const view = sup.get(name);
      return states.includes(view.state) ? view : undefined;
    },
    timeoutMs,
    50,
  );
}

/**
 * A supervisor with two ready servers sharing one session: `python` (the stdlib fixture with a
 * dependency from a local wheelhouse) and `node` (the SDK fixture, installed with npm ci). Every
 * status event is pushed to `events`; the fixture folders go to `folders` for cleanup.
 */
export async function supervisorWithPythonAndNode(events: StatusEvent[], folders: TempFolder[]): Promise<Supervisor> {
  const py = copyFixture('python-mcp');
  buildWheel(`${py.path}/wheels`, 'mcpboxgreet', '1.0', 'hello');
  const node = copyFixture('node-mcp');
  folders.push(py, node);
  const sup = await testSupervisor(testConfig({ pingIntervalSec: 2 }));
  sup.on('status', (e) => events.push(e));
  sup.add('python', {
    command: 'python3',
    args: [`${py.path}/server.py`],
    box: { install: { noIndex: true, findLinks: ['wheels'] } },
  });
  sup.add('node', { command: 'node', args: [`${node.path}/server.mjs`] });
  await Promise.all(['python', 'node'].map((n) => waitForState(sup, n, ['ready'], 180_000)));
  return sup;
}
