/**
 * Stages a server's host folder into its private workspace inside the session.
 *
 * The tar stream is extracted *inside the container, as the server's own uid*, into a fresh
 * directory (`ws.<generation>`), which then replaces the `workspace` symlink atomically (rename).
 * The Docker daemon never extracts anything (no putArchive), so it can never follow a link a tenant
 * planted, and a previous generation's links cannot redirect the new one: every process of the uid
 * is killed before extraction and the target directory did not exist a moment before.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { BoxError } from '../errors/box-error.js';
import { IDENTITY_SUBDIRS } from '../runtime/identity.js';
import type { Identity, Session } from '../runtime/types.js';
import { packFolder, type PackReport } from './pack-folder.js';
import {
  DEFAULT_STAGE_LIMITS,
  walkFolder,
  type DroppedEntry,
  type StageLimits,
  type WalkResult,
} from './walk-folder.js';

const STAGE_META_DIR = '.mcp-box-stage';
const STAGE_TIMEOUT_MS = 120_000;

const EXTRACT_SCRIPT = `set -eu
kill -s KILL -- -1 2>/dev/null || true
root="$1"; gen="$2"; nodefp="$3"
umask 077
if [ ! -d "$root" ]; then
  # First stage of a new identity: its private folders (mkdir, not -p: never someone else's).
  mkdir "$root" && mkdir ${IDENTITY_SUBDIRS.map((d) => `"$root/${d}"`).join(' ')} && chmod 0700 "$root"
fi
cd "$root"
mkdir "ws.$gen"
tar -x -f - -C "ws.$gen" --no-same-owner --no-same-permissions --no-overwrite-dir
if [ -d "ws.$gen/${STAGE_META_DIR}" ]; then
  if [ -f "ws.$gen/${STAGE_META_DIR}/ca.pem" ]; then
    { cat /etc/ssl/certs/ca-certificates.crt 2>/dev/null || true; cat "ws.$gen/${STAGE_META_DIR}/ca.pem"; } > ca.pem.tmp
    mv -f ca.pem.tmp ca.pem
  fi
  rm -rf "ws.$gen/${STAGE_META_DIR}"
fi
if [ "$nodefp" != "-" ] && [ -f "deps/node-$nodefp/.done" ] && [ ! -e "ws.$gen/node_modules" ]; then
  ln -s "../deps/node-$nodefp/node_modules" "ws.$gen/node_modules"
fi
ln -s "ws.$gen" "workspace.$gen"
mv -T "workspace.$gen" workspace
for old in ws.*; do [ "$old" = "ws.$gen" ] || rm -rf "$old"; done
printf 'deps:'
for d in deps/*; do [ -f "$d/.done" ] && printf ' %s' "\${d#deps/}"; done
printf '\\n'
[ -f ca.pem ] && echo "ca:$root/ca.pem" || true
`;

export interface StageOptions {
  /** Realpath of a policy-checked folder, or null for a server without one (an empty workspace). */
  hostPath: string | null;
  limits?: StageLimits;
  /** Host file with extra CA certificates, appended to the image's bundle at `<root>/ca.pem`. */
  caCertsFile?: string | null;
  /** A Node deps fingerprint whose installed node_modules should be linked into the new workspace. */
  linkNodeDeps?: string | null;
  /** A walk done beforehand (to plan installs from the same view); walked here otherwise. */
  walk?: WalkResult;
  signal?: AbortSignal;
}

export interface StageResult {
  generation: string;
  files: number;
  dirs: number;
  links: number;
  bytes: number;
  ignored: number;
  /** Links dropped with a warning (absolute or leaving the folder). */
  dropped: DroppedEntry[];
  /** sha256 of each staged file. */
  hashes: Map<string, string>;
  /** Installed dependency sets present in the identity (`py-<fp>`, `node-<fp>`). */
  depsPresent: Set<string>;
  /** CA bundle path inside the sandbox, when one was staged. */
  caBundle: string | null;
  durationMs: number;
}

export function emptyWalk(): WalkResult {
  return { root: '', entries: [], dropped: [], ignored: 0, bytes: 0, files: 0 };
}

export async function stageFolder(session: Session, identity: Identity, opts: StageOptions): Promise<StageResult> {
  const started = Date.now();
  const walk =
    opts.walk ??
    (opts.hostPath === null ? emptyWalk() : await walkFolder(opts.hostPath, opts.limits ?? DEFAULT_STAGE_LIMITS));
  const extra: { name: string; content: Buffer }[] = [];
  if (opts.caCertsFile != null) {
    let content: Buffer;
    try {
      content = readFileSync(opts.caCertsFile);
    } catch (err) {
      throw new BoxError(
        'STAGE_FAILED',
        'workspace_stage',
        `Cannot read box.caCertsFile ${JSON.stringify(opts.caCertsFile)}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    extra.push({ name: `${STAGE_META_DIR}/ca.pem`, content });
  }
  const generation = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const abort = new AbortController();
  const signal = opts.signal === undefined ? abort.signal : AbortSignal.any([abort.signal, opts.signal]);
  const packed = packFolder(walk, { uid: identity.uid, gid: identity.gid, extra, signal });
  let packError: unknown = null;
  packed.done.catch((err: unknown) => {
    packError = err;
    abort.abort(err);
  });
  const result = await session.exec({
    identity,
    cmd: ['/bin/sh', '-c', EXTRACT_SCRIPT, 'mcp-box-stage', identity.root, generation, opts.linkNodeDeps ?? '-'],
    cwd: '/', // the script creates and enters the identity's root itself
    // tar-stream's pack is a streamx stream: adapt it to a Node Readable (async iteration keeps backpressure).
    stdin: Readable.from(packed.stream),
    timeoutMs: STAGE_TIMEOUT_MS,
    signal,
  });
  if (packError !== null) throw packError;
  if (opts.signal?.aborted === true) throw new BoxError('ABORTED', 'workspace_stage', 'Staging was cancelled');
  if (result.timedOut)
    throw new BoxError('TIMEOUT', 'workspace_stage', `Staging did not finish within ${STAGE_TIMEOUT_MS} ms`);
  if (result.exitCode !== 0) {
    throw new BoxError(
      'STAGE_FAILED',
      'workspace_stage',
      `Extracting the workspace failed (exit ${result.exitCode}): ${lastLines(result.stderr, 5)}`,
      {
        details: { exitCode: result.exitCode, stderrTail: lastLines(result.stderr, 20) },
      },
    );
  }
  const report: PackReport = await packed.done;
  const depsLine = result.stdout.split('\n').find((l) => l.startsWith('deps:')) ?? 'deps:';
  const caLine = result.stdout.split('\n').find((l) => l.startsWith('ca:'));
  return {
    generation,
    files: report.files,
    dirs: report.dirs,
    links: report.links,
    bytes: report.bytes,
    ignored: walk.ignored,
    dropped: walk.dropped,
    hashes: report.hashes,
    depsPresent: new Set(
      depsLine
        .slice('deps:'.length)
        .trim()
        .split(/\s+/)
        .filter((d) => d !== ''),
    ),
    caBundle: caLine === undefined ? null : caLine.slice('ca:'.length),
    durationMs: Date.now() - started,
  };
}

function lastLines(text: string, n: number): string {
  return text.trim().split('\n').slice(-n).join('\n');
}
