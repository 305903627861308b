/**
 * The configuration (`mcp-box.json`): a superset of the `mcpServers` format of Claude Desktop and
 * Cursor configs, so an existing config runs sandboxed unchanged. Strict: unknown keys and bad
 * values are rejected with the field path in the message.
 */
import { z } from 'zod';
import { PROFILE_RANGES, type ProfileRange } from '../runtime/profile.js';
import { SERVER_NAME_PATTERN, SERVER_NAME_RULE } from './server-name.js';

const positiveInt = z.number().int().positive();
const seconds = z.number().positive().max(86_400);

/** A zod number for a profile field, from its range in runtime/profile.ts (the one source). */
function rangeSchema(range: ProfileRange): z.ZodNumber {
  let schema = range.integer ? z.number().int() : z.number();
  schema = range.exclusiveMin === true ? schema.gt(range.min) : schema.min(range.min);
  return range.max === undefined ? schema : schema.max(range.max);
}

/** Numeric fields that `box`, a server's `box` and `box.limits` share. */
const numericBox = {
  cpus: rangeSchema(PROFILE_RANGES.cpus),
  memoryMb: rangeSchema(PROFILE_RANGES.memoryMb),
  pidsLimit: rangeSchema(PROFILE_RANGES.pidsLimit),
  tmpfsMb: rangeSchema(PROFILE_RANGES.tmpfsMb),
  /** Per-server process-count limit (RLIMIT_NPROC of its uid). */
  processLimit: z.number().int().min(8).max(4096),
  /** Disk a server's folders may hold (staged code, installs, HOME, TMPDIR), and the largest file it may write. */
  diskMb: z.number().int().min(16),
  /** Files, folders and links a server's folders may hold. */
  diskFiles: z.number().int().min(1000),
};

export const installOptionsSchema = z.strictObject({
  indexUrl: z.url().optional(),
  extraIndexUrls: z.array(z.url()).optional(),
  findLinks: z.array(z.string().min(1)).optional(),
  trustedHosts: z.array(z.string().min(1)).optional(),
  noIndex: z.boolean().optional(),
  npmRegistry: z.url().optional(),
});

export const restartPolicySchema = z.strictObject({
  /** Failures allowed within `windowSec` before the server is `failed`. */
  maxRestarts: z.number().int().min(0).max(1000).optional(),
  windowSec: seconds.optional(),
  backoffInitialMs: z.number().int().min(0).max(600_000).optional(),
  backoffMaxMs: z.number().int().min(0).max(3_600_000).optional(),
  /** A server up this long gets its whole restart budget back. */
  healthyAfterSec: seconds.optional(),
});

export const stageLimitsSchema = z.strictObject({
  maxBytes: positiveInt.optional(),
  maxFiles: positiveInt.optional(),
  maxDepth: positiveInt.max(256).optional(),
});

/**
 * Settings that may be given globally (`box`, the operator's) and per server (`mcpServers.x.box`,
 * tenant input). A per-server value may only narrow the operator's (see server-policy.ts): limits
 * at or below the operator's caps, network on→off, rootfs read-only, an allowed image; the CA
 * bundle and the index URLs are the operator's only.
 */
const boxCommon = {
  image: z.string().min(1).optional(),
  network: z.enum(['on', 'off']).optional(),
  cpus: numericBox.cpus.optional(),
  memoryMb: numericBox.memoryMb.optional(),
  pidsLimit: numericBox.pidsLimit.optional(),
  readOnlyRootfs: z.boolean().optional(),
  tmpfsMb: numericBox.tmpfsMb.optional(),
  caCertsFile: z.string().min(1).nullable().optional(),
  client: z.enum(['supervisor', 'external']).optional(),
  install: installOptionsSchema.optional(),
  installTimeoutSec: seconds.optional(),
  startupTimeoutSec: seconds.optional(),
  toolTimeoutSec: seconds.optional(),
  /** MCP ping interval; 0 turns the ping off. */
  pingIntervalSec: z.number().min(0).max(3600).optional(),
  /** Consecutive tool-call timeouts after which the server is recycled; 0 = never. */
  recycleAfterTimeouts: z.number().int().min(0).optional(),
  restart: restartPolicySchema.optional(),
  stageLimits: stageLimitsSchema.optional(),
  processLimit: numericBox.processLimit.optional(),
  diskMb: numericBox.diskMb.optional(),
  diskFiles: numericBox.diskFiles.optional(),
};

export const serverBoxSchema = z.strictObject({
  ...boxCommon,
  hostPath: z.string().min(1).optional(),
});

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'environment variable names are letters, digits and _');

export const serverSchema = z.strictObject({
  command: z.string().min(1),
  args: z.array(z.string()).optional(),
  env: z
    .record(
      envName,
      z.string().refine((v) => !v.includes('\0'), 'must not contain NUL'),
    )
    .optional(),
  /** Env keys whose values are secrets although their names do not say so (redacted everywhere). */
  secretEnv: z.array(envName).max(256).optional(),
  cwd: z.string().min(1).optional(),
  box: serverBoxSchema.optional(),
  // Keys other clients write into the same format: accepted; only `disabled` has an effect.
  type: z.literal('stdio').optional(),
  disabled: z.boolean().optional(),
  autoApprove: z.array(z.string()).optional(),
  alwaysAllow: z.array(z.string()).optional(),
  timeout: z.number().optional(),
  transportType: z.literal('stdio').optional(),
});

export const relaySchema = z.strictObject({
  maxLineBytes: z
    .number()
    .int()
    .min(1024)
    .max(256 * 1024 * 1024)
    .optional(),
  heartbeatSec: seconds.optional(),
  /** Output kept for a process while no client is attached. */
  detachedBufferBytes: z.number().int().min(0).optional(),
});

/** The operator's ceilings for per-server values (default: the operator's own value of the field). */
export const boxLimitsSchema = z.strictObject({
  memoryMb: numericBox.memoryMb.optional(),
  cpus: numericBox.cpus.optional(),
  pidsLimit: numericBox.pidsLimit.optional(),
  tmpfsMb: numericBox.tmpfsMb.optional(),
  processLimit: numericBox.processLimit.optional(),
  diskMb: numericBox.diskMb.optional(),
  diskFiles: numericBox.diskFiles.optional(),
  stageBytes: positiveInt.optional(),
  stageFiles: positiveInt.optional(),
  stageDepth: positiveInt.max(256).optional(),
  installTimeoutSec: seconds.optional(),
  startupTimeoutSec: seconds.optional(),
  toolTimeoutSec: seconds.optional(),
});

export const globalBoxSchema = z.strictObject({
  ...boxCommon,
  /** Maxima a server's own `box` may ask for, when above the operator's own values. */
  limits: boxLimitsSchema.optional(),
  /** Images a server may name in its `box.image` (default: only the operator's image). */
  allowedImages: z.array(z.string().min(1)).optional(),
  /** With `network: "off"`: a server may still ask for `"on"`. */
  allowNetworkOverride: z.boolean().optional(),
  /** How often each running server's disk use is measured against its quota; 0 = never. */
  diskCheckSec: z.number().min(0).max(3600).optional(),
  /** false: no server is started, each reports box_unavailable ("disabled by config"). */
  enabled: z.boolean().optional(),
  /** Keep session containers when serve stops, and adopt them on the next start. */
  persistentSessions: z.boolean().optional(),
  allowedRoots: z.array(z.string().min(1)).optional(),
  relay: relaySchema.optional(),
});

export const configSchema = z.strictObject({
  $schema: z.string().optional(),
  mcpServers: z.record(z.string().regex(SERVER_NAME_PATTERN, SERVER_NAME_RULE), serverSchema).default({}),
  box: globalBoxSchema.default({}),
  server: z
    .strictObject({
      host: z.string().min(1).optional(),
      port: z.number().int().min(0).max(65_535).optional(),
      token: z.string().min(16, 'the token must be at least 16 characters').optional(),
      allowedHosts: z.array(z.string().min(1)).optional(),
      /**
       * Largest request body; default: the relay's line limit plus 64 KiB (a tool call carries what the relay
       * does).
       */
      maxBodyBytes: z
        .number()
        .int()
        .min(1024)
        .max(1024 * 1024 * 1024)
        .optional(),
      /** Time a client has to send its request line and headers (slowloris). */
      headersTimeoutMs: z.number().int().min(100).max(300_000).optional(),
    })
    .default({}),
  state: z.strictObject({ dir: z.string().min(1).optional() }).default({}),
});

export type McpBoxConfig = z.infer<typeof configSchema>;
export type ServerDefinition = z.infer<typeof serverSchema>;
export type ServerBoxOptions = z.infer<typeof serverBoxSchema>;
export type GlobalBoxOptions = z.infer<typeof globalBoxSchema>;
export type BoxLimits = z.infer<typeof boxLimitsSchema>;
