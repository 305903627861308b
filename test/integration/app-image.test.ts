import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { docker } from '../helpers/runtime.js';

/** docker/build.sh builds mcp-box's own image offline; inside it, mcp-box drives the host engine. */
describe('the mcp-box image (docker/)', () => {
  const tag = `mcp-box-test:${inject('runTag')}`;

  afterAll(async () => {
    await docker
      .getImage(tag)
      .remove({ force: true })
      .catch(() => undefined);
  });

  it('builds offline and runs `version` and `doctor` against the host engine through the mounted socket', () => {
    const built = execFileSync('bash', ['docker/build.sh', tag], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    }).trim();
    expect(built).toBe(tag);
    const version = execFileSync('docker', ['run', '--rm', tag, 'version'], { encoding: 'utf8' }).trim();
    expect(version).toMatch(/^\d+\.\d+\.\d+$/);
    const doctor = execFileSync(
      'docker',
      [
        'run',
        '--rm',
        '-e',
        `MCP_BOX_TAG=${inject('runTag')}`,
        '-v',
        '/var/run/docker.sock:/var/run/docker.sock',
        tag,
        'doctor',
      ],
      { encoding: 'utf8' },
    );
    expect(doctor).toMatch(/^ok {3}engine/m);
    expect(doctor).toMatch(/^ok {3}image/m);
    expect(doctor).toMatch(/^ok {3}hardening/m);
  });
});
