/** Test helpers for the Docker suite. Tests may use dockerode directly to look from outside. */
import Dockerode from 'dockerode';
import { inject } from 'vitest';
import { createDockerRuntime, type DockerRuntimeOptions } from '../../src/runtime/docker/docker-runtime.js';
import type { Runtime, SessionProfile } from '../../src/runtime/types.js';

export const docker = new Dockerode();

export function testRuntime(opts: DockerRuntimeOptions = {}): Runtime {
  return createDockerRuntime({ tag: inject('runTag'), ...opts });
}

/** A small profile so several sessions fit on a 2-core, shared machine. */
export function testProfile(overrides: Partial<SessionProfile> = {}): Partial<SessionProfile> {
  return { image: inject('sandboxImage'), memoryMb: 512, pidsLimit: 256, cpus: 1, ...overrides };
}

/** Polls `check` until it returns a non-undefined value or `timeoutMs` passes. */
export async function eventually<T>(
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 10_000,
  stepMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** Reads a stream to its end (or until `until` matches what was read). */
export function collect(
  stream: NodeJS.ReadableStream,
  until?: (text: string) => boolean,
  timeoutMs = 15_000,
): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(
      () => reject(new Error(`stream did not deliver in ${timeoutMs} ms; got ${JSON.stringify(text.slice(-200))}`)),
      timeoutMs,
    );
    const done = (): void => {
      clearTimeout(timer);
      stream.removeListener('data', onData);
      resolve(text);
    };
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('utf8');
      if (until?.(text) === true) done();
    };
    stream.on('data', onData);
    stream.once('end', done);
  });
}
