/**
 * Stops and starts the machine's real dockerd (the one scripts/ensure-engine.sh started), with the
 * same command line it runs with, for the engine-restart fault tests. Root only: the suite runs as
 * root here and in CI; anywhere else these tests fail with the reason, never skip.
 */
import { spawn } from 'node:child_process';
import { existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { docker, eventually } from './runtime.js';

export interface EngineProcess {
  pid: number;
  argv: string[];
}

export function findDockerd(): EngineProcess {
  if (process.getuid?.() !== 0) throw new Error('the engine-restart tests stop and start dockerd, which needs root');
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = cmdline(entry);
    if (argv[0] !== undefined && /(^|\/)dockerd$/.test(argv[0])) return { pid: Number(entry), argv };
  }
  throw new Error(
    'no dockerd process found: the engine-restart tests need the dockerd that scripts/ensure-engine.sh starts',
  );
}

function cmdline(pid: string): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .filter((a) => a !== '');
  } catch {
    return []; // the process ended while we looked
  }
}

/** SIGTERM to dockerd, then waits until the process is gone (it stops its containers first). */
export async function stopEngine(engine: EngineProcess): Promise<void> {
  process.kill(engine.pid, 'SIGTERM');
  await eventually(() => (existsSync(`/proc/${engine.pid}`) ? undefined : true), 60_000, 100);
}

/** Starts dockerd again with the same arguments (detached, like ensure-engine.sh) and waits for /_ping. */
export async function startEngine(
  engine: EngineProcess,
  logFile = '/var/log/mcp-box-dockerd.log',
): Promise<EngineProcess> {
  const log = openSync(logFile, 'a');
  const child = spawn(engine.argv[0] as string, engine.argv.slice(1), { detached: true, stdio: ['ignore', log, log] });
  child.unref();
  await eventually(
    async () =>
      (await docker.ping().then(
        () => true,
        () => false,
      ))
        ? true
        : undefined,
    90_000,
    200,
  );
  return { pid: child.pid as number, argv: engine.argv };
}
