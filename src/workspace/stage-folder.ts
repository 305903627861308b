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
import {
  PRELUDE_STOP_EXIT,
  type Identity,
  type PreludeOutcome,
  type ProcessPrelude,
  type Session,
} from '../runtime/types.js';
import { shellQuote } from '../util/shell-quote.js';
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

/**
 * The stage: `$1` root, `$2` generation, `$3` node deps fingerprint to link (or -), `$4` the deps sets the command
 * needs (or -): when one is missing, the stage ends with PRELUDE_STOP_EXIT after its report (an install comes next).
 * Run as its own exec it first kills the identity's processes; as a prelude the wrapper has done that.
 */
const KILL_IDENTITY = 'kill -s KILL -- -1 2>/dev/null || true\n';
const STAGE_SCRIPT = `set -eu
root="$1"; gen="$2"; nodefp="$3"; need="$4"
umask 077
if [ ! -d "$root" ]; then
  # First stage of a new identity: its private folders (mkdir, not -p: never someone else's).
  mkdir "$root" && mkdir ${IDENTITY_SUBDIRS.map((d) => `"$root/${d}"`).join(' ')} && chmod 0700 "$root"
fi
cd "$root"
mkdir "ws.$gen"
tar -x -f - -C "ws.$gen" --no-same-owner --no-same-permissions --no-overwrite-dir
# The bundle is this stage's own: a CA of an earlier config does not outlive it.
if [ -f "ws.$gen/${STAGE_META_DIR}/ca.pem" ]; then
  { cat /etc/ssl/certs/ca-certificates.crt 2>/dev/null || true; cat "ws.$gen/${STAGE_META_DIR}/ca.pem"; } > ca.pem.tmp
  mv -f ca.pem.tmp ca.pem
else
  rm -f ca.pem
fi
rm -rf "ws.$gen/${STAGE_META_DIR}"
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
if [ "$need" != "-" ]; then
  for d in $need; do [ -f "deps/$d/.done" ] || exit ${PRELUDE_STOP_EXIT}; done
fi
`;
/** The stage as a prelude buffers its tar in memory: folders larger than this are staged by an exec of their own. */
export const PRELUDE_STAGE_MAX_BYTES = 8 * 1024 * 1024;

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

/** The staged files' report and the tar to extract, packed from the walk (the CA bundle added at the end). */
function packStage(identity: Identity, opts: StageOptions, walk: WalkResult, signal: AbortSignal) {
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
  return packFolder(walk, { uid: identity.uid, gid: identity.gid, extra, signal });
}

function walkOf(opts: StageOptions): Promise<WalkResult> {
  if (opts.walk !== undefined) return Promise.resolve(opts.walk);
  return opts.hostPath === null
    ? Promise.resolve(emptyWalk())
    : walkFolder(opts.hostPath, opts.limits ?? DEFAULT_STAGE_LIMITS);
}

const newGeneration = (): string => `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;

function stageArgs(identity: Identity, generation: string, opts: StageOptions, need: string[]): string[] {
  return [identity.root, generation, opts.linkNodeDeps ?? '-', need.length === 0 ? '-' : need.join(' ')];
}

/** Stages the folder with an exec of its own (streaming its tar: any size within the stage limits). */
export async function stageFolder(session: Session, identity: Identity, opts: StageOptions): Promise<StageResult> {
  const started = Date.now();
  const walk = await walkOf(opts);
  const generation = newGeneration();
  const abort = new AbortController();
  const signal = opts.signal === undefined ? abort.signal : AbortSignal.any([abort.signal, opts.signal]);
  const packed = packStage(identity, opts, walk, signal);
  let packError: unknown = null;
  packed.done.catch((err: unknown) => {
    packError = err;
    abort.abort(err);
  });
  const result = await session.exec({
    identity,
    cmd: ['/bin/sh', '-c', KILL_IDENTITY + STAGE_SCRIPT, 'mcp-box-stage', ...stageArgs(identity, generation, opts, [])],
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
  if (result.exitCode !== 0) throw extractFailed(result.exitCode, result.stderr);
  return stageResult(await packed.done, walk, generation, result.stdout.split('\n'), started);
}

/** A stage run as the prelude of the server's own process: one exec for both. */
export interface PreludeStage {
  prelude: ProcessPrelude;
  /** The stage's result from the prelude's outcome; throws STAGE_FAILED when it failed. */
  result(outcome: PreludeOutcome): StageResult;
}

export async function stagePrelude(
  identity: Identity,
  opts: StageOptions & { need: string[] },
): Promise<PreludeStage | null> {
  const started = Date.now();
  const walk = await walkOf(opts);
  // Headers and padding: at most 1.5 KiB per entry (a PAX header for long names) on top of the contents.
  if (walk.bytes + (walk.entries.length + 4) * 1536 > PRELUDE_STAGE_MAX_BYTES) return null;
  const generation = newGeneration();
  const packed = packStage(identity, opts, walk, opts.signal ?? new AbortController().signal);
  const chunks: Buffer[] = [];
  for await (const chunk of packed.stream as AsyncIterable<Buffer>) chunks.push(chunk);
  const report = await packed.done;
  const args = stageArgs(identity, generation, opts, opts.need).map(shellQuote).join(' ');
  return {
    prelude: {
      script: `set -- ${args}\n${STAGE_SCRIPT}`,
      stdin: Buffer.concat(chunks),
      exclusive: true,
      timeoutMs: STAGE_TIMEOUT_MS,
    },
    result(outcome) {
      if (outcome.status === 'failed') throw extractFailed(outcome.exitCode, outcome.output.join('\n'));
      return stageResult(report, walk, generation, outcome.output, started);
    },
  };
}

function extractFailed(exitCode: number | null, output: string): BoxError {
  return new BoxError(
    'STAGE_FAILED',
    'workspace_stage',
    `Extracting the workspace failed (exit ${exitCode}): ${lastLines(output, 5)}`,
    { details: { exitCode, stderrTail: lastLines(output, 20) } },
  );
}

function stageResult(
  report: PackReport,
  walk: WalkResult,
  generation: string,
  lines: string[],
  started: number,
): StageResult {
  const depsLine = lines.findLast((l) => l.startsWith('deps:')) ?? 'deps:';
  const caLine = lines.findLast((l) => l.startsWith('ca:'));
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
