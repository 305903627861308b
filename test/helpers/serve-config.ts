/** The config file of an in-process `serve` for the Docker suite: the suite's image, quick restarts, no pings. */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import { HOST_CA_BUNDLE } from './supervisor.js';

/** Writes `dir/mcp-box.json` with these servers and this token (port 0: any free port); returns its path. */
export function writeServeConfig(dir: string, mcpServers: Record<string, unknown>, token: string): string {
  const configPath = join(dir, 'mcp-box.json');
  writeFileSync(
    configPath,
    JSON.stringify({
      mcpServers,
      box: {
        image: inject('sandboxImage'),
        memoryMb: 512,
        allowedRoots: [tmpdir()],
        caCertsFile: HOST_CA_BUNDLE,
        pingIntervalSec: 0,
        restart: { backoffInitialMs: 200, maxRestarts: 3 },
      },
      server: { port: 0, token },
    }),
  );
  return configPath;
}
