/**
 * Builds the sandbox image from images/sandbox/ with no registry needed, and skips the build when
 * an image built from the same inputs (Dockerfile folder + base image id) already exists: the
 * inputs hash is stored in the image's `mcp-box.image.inputs` label.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BoxError } from '../errors/box-error.js';
import { DEFAULT_SANDBOX_IMAGE } from '../runtime/profile.js';
import type { Runtime } from '../runtime/types.js';

export const LABEL_IMAGE_INPUTS = 'mcp-box.image.inputs';
/** Public base used where a registry is reachable (and when it is already present locally). */
export const PUBLIC_BASE_IMAGE = 'debian:bookworm-slim';

export const IMAGES_DIR = fileURLToPath(new URL('../../images/', import.meta.url));

export interface EnsureSandboxImageOptions {
  runtime: Runtime;
  tag?: string;
  /** Base image reference; default: $MCP_BOX_BASE_IMAGE, the public base if present, else a local debootstrap base. */
  base?: string;
  force?: boolean;
  onProgress?: (line: string) => void;
  signal?: AbortSignal;
}

export interface SandboxImageResult {
  ref: string;
  id: string;
  base: string;
  inputsHash: string;
  built: boolean;
  durationMs: number;
}

export async function ensureSandboxImage(opts: EnsureSandboxImageOptions): Promise<SandboxImageResult> {
  const started = Date.now();
  const tag = opts.tag ?? DEFAULT_SANDBOX_IMAGE;
  const progress = opts.onProgress ?? (() => undefined);
  const base = await resolveBase(opts, progress);
  const baseInfo = await opts.runtime.imageInfo(base, opts.signal === undefined ? {} : { signal: opts.signal });
  if (baseInfo === null)
    throw new BoxError('IMAGE_MISSING', 'image', `Base image ${base} is not present on the engine`);
  const contextDir = join(IMAGES_DIR, 'sandbox');
  const inputsHash = hashInputs(contextDir, baseInfo.id);

  const existing = await opts.runtime.imageInfo(tag, opts.signal === undefined ? {} : { signal: opts.signal });
  if (opts.force !== true && existing !== null && existing.labels[LABEL_IMAGE_INPUTS] === inputsHash) {
    progress(`${tag} is up to date (inputs ${inputsHash})`);
    return { ref: tag, id: existing.id, base, inputsHash, built: false, durationMs: Date.now() - started };
  }
  progress(`building ${tag} from base ${base} (inputs ${inputsHash})`);
  const built = await opts.runtime.buildImage({
    contextDir,
    tag,
    buildArgs: { BASE: base },
    labels: { [LABEL_IMAGE_INPUTS]: inputsHash, 'mcp-box.image.base': base },
    onProgress: progress,
    ...(opts.signal === undefined ? {} : { signal: opts.signal }),
  });
  return { ref: tag, id: built.id, base, inputsHash, built: true, durationMs: Date.now() - started };
}

/** sha256 over the relative paths and contents of the build context, plus the base image id. */
export function hashInputs(contextDir: string, baseImageId: string): string {
  const hash = createHash('sha256');
  const walk = (dir: string, prefix: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const full = join(dir, name);
      const rel = prefix === '' ? name : `${prefix}/${name}`;
      if (statSync(full).isDirectory()) walk(full, rel);
      else hash.update(`${rel}\0`).update(readFileSync(full)).update('\0');
    }
  };
  walk(contextDir, '');
  hash.update(`base\0${baseImageId}`);
  return hash.digest('hex').slice(0, 16);
}

async function resolveBase(opts: EnsureSandboxImageOptions, progress: (line: string) => void): Promise<string> {
  const explicit = opts.base ?? process.env.MCP_BOX_BASE_IMAGE;
  if (explicit !== undefined && explicit !== '') return explicit;
  if ((await opts.runtime.imageInfo(PUBLIC_BASE_IMAGE)) !== null) return PUBLIC_BASE_IMAGE;
  progress(
    `${PUBLIC_BASE_IMAGE} is not present and no registry is assumed: building a local Debian base (debootstrap)`,
  );
  return runBaseScript(progress, opts.signal);
}

function runBaseScript(progress: (line: string) => void, signal?: AbortSignal): Promise<string> {
  const script = join(IMAGES_DIR, 'base', 'build-base.sh');
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(signal === undefined ? {} : { signal }),
    });
    let stdout = '';
    let pendingErr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => {
      pendingErr += c.toString();
      const lines = pendingErr.split('\n');
      pendingErr = lines.pop() ?? '';
      for (const line of lines) if (line.trim() !== '') progress(line);
    });
    child.on('error', (err) =>
      reject(new BoxError('IMAGE_BUILD_FAILED', 'image', `Failed to run ${script}: ${err.message}`, { cause: err })),
    );
    child.on('close', (code) => {
      const ref = stdout.trim().split('\n').pop() ?? '';
      if (code === 0 && ref !== '') resolve(ref);
      else
        reject(
          new BoxError(
            'IMAGE_BUILD_FAILED',
            'image',
            `Building the local base image failed (exit ${code}); see the lines above`,
          ),
        );
    });
  });
}
