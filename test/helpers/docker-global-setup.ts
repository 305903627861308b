/**
 * Global setup of the Docker suite. It never skips: without an engine the suite fails with the
 * reason (run scripts/ensure-engine.sh). It builds the sandbox image when its inputs changed, hands
 * every test file one run tag, and at the end fails the run if anything with that tag is left.
 */
import { randomBytes } from 'node:crypto';
import Dockerode from 'dockerode';
import type { TestProject } from 'vitest/node';
import { execFileSync } from 'node:child_process';
import { createDockerRuntime } from '../../src/runtime/docker/docker-runtime.js';
import { ensureSandboxImage } from '../../src/image/sandbox-image.js';

declare module 'vitest' {
  export interface ProvidedContext {
    runTag: string;
    sandboxImage: string;
  }
}

const runTag = `test-${randomBytes(4).toString('hex')}`;

export async function setup(project: TestProject): Promise<void> {
  // Tests that run a real supervisor process (kill -9, the CLI) use the built package.
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
    stdio: 'inherit',
  });
  const runtime = createDockerRuntime({ tag: runTag });
  try {
    const engine = await runtime.ping();
    console.log(
      `[docker suite] engine ${engine.version} (API ${engine.apiVersion}, cgroup v${engine.cgroupVersion}); ` +
        `run tag ${runTag}`,
    );
  } catch (err) {
    throw new Error(
      `The Docker suite needs a Docker engine and none answers (${String(err)}). Run scripts/ensure-engine.sh first.`,
    );
  }
  const image = await ensureSandboxImage({ runtime, onProgress: (line) => console.log(`[image] ${line}`) });
  console.log(
    `[docker suite] sandbox image ${image.ref} ${image.built ? `built in ${image.durationMs} ms` : 'up to date'}`,
  );
  project.provide('runTag', runTag);
  project.provide('sandboxImage', image.ref);
}

export async function teardown(): Promise<void> {
  const runtime = createDockerRuntime({ tag: runTag });
  const leftovers = await runtime.listManaged();
  if (leftovers.length === 0) return;
  await runtime.reap({ includeUnknownOwners: true });
  // Remove even live-owner leftovers of this run: the run is over.
  const docker = new Dockerode();
  for (const r of leftovers.filter((x) => x.kind === 'container'))
    await docker
      .getContainer(r.id)
      .remove({ force: true, v: true })
      .catch(() => undefined);
  for (const r of leftovers.filter((x) => x.kind === 'volume'))
    await docker
      .getVolume(r.name)
      .remove()
      .catch(() => undefined);
  throw new Error(
    `The Docker suite left ${leftovers.length} resource(s) behind: ` +
      `${leftovers.map((r) => `${r.kind} ${r.name} (owner pid ${r.labels['mcp-box.owner.pid'] ?? '?'})`).join(', ')}`,
  );
}
