/**
 * A server's folder into its workspace, composed from workspace/ (walk, stage) and install/ (plan, verify):
 *
 *   walk the host folder → plan the install from that same view (manifests read and hashed once)
 *   → stage (extract inside the sandbox, as the server's uid) → the staged manifests must be the ones planned from
 *
 * `stageWorkspace` stages with an exec of its own; `preludeStage` prepares the same stage to run as the prelude of
 * the server's own process (see start-phases.ts), which saves an exec on every start.
 */
import { DEFAULT_STAGE_LIMITS, type StageLimits } from '../defaults.js';
import {
  detectInstallPlan,
  installFingerprints,
  type InstallOptions,
  type InstallPaths,
  type InstallPlan,
  type ToolVersions,
} from '../install/detect-install.js';
import { assertSameAsStaged, hostFolderView, type HostFolderView } from '../install/host-view.js';
import { neededDepSets, type DepFingerprints, type StagedWorkspace } from '../install/install-dependencies.js';
import { probeTools } from '../install/probe-tools.js';
import type { Identity, PreludeOutcome, ProcessPrelude, Session } from '../runtime/types.js';
import { emptyWalk, stageFolder, stagePrelude, type StageResult } from '../workspace/stage-folder.js';
import { walkFolder, type WalkResult } from '../workspace/walk-folder.js';

export type { StagedWorkspace } from '../install/install-dependencies.js';

export interface StageWorkspaceInput {
  session: Session;
  identity: Identity;
  /** Policy-checked realpath, or null for a server without a folder. */
  hostPath: string | null;
  limits?: StageLimits;
  caCertsFile?: string | null;
  installOptions?: InstallOptions;
  signal?: AbortSignal;
}

/** What a stage will put where, known before it runs: the walk, the install plan and its fingerprints. */
export interface StagePlan {
  walk: WalkResult;
  view: HostFolderView;
  plan: InstallPlan | null;
  tools: ToolVersions;
  /** From the manifests as the planner read them; the staged copies must hash the same. */
  fingerprints: DepFingerprints;
  paths: InstallPaths;
}

export async function planStage(input: StageWorkspaceInput): Promise<StagePlan> {
  const walk =
    input.hostPath === null ? emptyWalk() : await walkFolder(input.hostPath, input.limits ?? DEFAULT_STAGE_LIMITS);
  const tools = await probeTools(input.session);
  const view = hostFolderView(walk);
  const plan = input.hostPath === null ? null : detectInstallPlan(view, tools);
  // Read every manifest through the view: their hashes make the fingerprints, and each must be staged unchanged.
  for (const rel of [...(plan?.python?.manifests ?? []), ...(plan?.node?.manifests ?? [])]) view.read(rel);
  const fingerprints =
    plan === null
      ? { python: null, node: null }
      : installFingerprints(plan, view.readHashes, tools, input.installOptions ?? {});
  const paths: InstallPaths = {
    root: input.identity.root,
    workspace: input.identity.workspace,
    caBundle: input.caCertsFile == null ? null : `${input.identity.root}/ca.pem`,
  };
  return { walk, view, plan, tools, fingerprints, paths };
}

/** The staged manifests are the ones the plan was made from (else the folder changed in between: refused). */
function verifyStage(planned: StagePlan, stage: StageResult): StagedWorkspace {
  assertSameAsStaged(planned.view, stage.hashes);
  return {
    stage,
    plan: planned.plan,
    tools: planned.tools,
    fingerprints: planned.fingerprints,
    paths: { ...planned.paths, caBundle: stage.caBundle },
  };
}

function stageOptions(input: StageWorkspaceInput, planned: StagePlan) {
  return {
    hostPath: input.hostPath,
    walk: planned.walk,
    caCertsFile: input.caCertsFile ?? null,
    linkNodeDeps: planned.fingerprints.node,
    ...(input.signal === undefined ? {} : { signal: input.signal }),
  };
}

/** Walks, plans and stages with an exec of its own. */
export async function stageWorkspace(input: StageWorkspaceInput): Promise<StagedWorkspace> {
  return stagePlanned(input, await planStage(input));
}

/** Stages what was planned with an exec of its own (streaming: a folder of any size within its limits). */
export async function stagePlanned(input: StageWorkspaceInput, planned: StagePlan): Promise<StagedWorkspace> {
  return verifyStage(planned, await stageFolder(input.session, input.identity, stageOptions(input, planned)));
}

export interface PreludeStagePlan {
  planned: StagePlan;
  prelude: ProcessPrelude;
  /** The staged workspace from the prelude's outcome (throws STAGE_FAILED when the stage failed). */
  staged(outcome: PreludeOutcome): StagedWorkspace;
}

/**
 * The stage as the prelude of the server's process, or null when the folder is too big to hold in memory. The
 * prelude stops the exec (its command does not run) when a dependency set the plan needs is not installed yet.
 */
export async function preludeStage(input: StageWorkspaceInput, planned: StagePlan): Promise<PreludeStagePlan | null> {
  const needed = neededDepSets(planned.plan, planned.fingerprints);
  const need = [needed.python, needed.node].filter((d): d is string => d !== null);
  const stage = await stagePrelude(input.identity, { ...stageOptions(input, planned), need });
  if (stage === null) return null;
  return { planned, prelude: stage.prelude, staged: (outcome) => verifyStage(planned, stage.result(outcome)) };
}
