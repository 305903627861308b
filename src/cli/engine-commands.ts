/** The commands that talk to the Docker engine: image build, reap, doctor (loaded only when run). */
import { realpathSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { TOKEN_FILE_NAME } from '../config/api-token.js';
import { DEFAULT_SANDBOX_IMAGE } from '../defaults.js';
import { loadConfig, type LoadedConfig } from '../config/load-config.js';
import { describeError } from '../errors/box-error.js';
import { ensureSandboxImage } from '../image/sandbox-image.js';
import { createDockerRuntime } from '../runtime/docker/docker-runtime.js';
import { resolveProfile } from '../runtime/profile.js';
import { deniedFolder } from '../workspace/host-policy.js';
import type { CommandInput } from './command-table.js';
import type { doctorOptions, imageBuildOptions, reapOptions } from './command-options.js';
import { EXIT } from './exit-codes.js';

export async function imageBuild({ values }: CommandInput<typeof imageBuildOptions>): Promise<number> {
  const runtime = createDockerRuntime();
  try {
    const result = await ensureSandboxImage({
      runtime,
      ...(values.base === undefined ? {} : { base: values.base }),
      ...(values.tag === undefined ? {} : { tag: values.tag }),
      force: values.force,
      onProgress: (line) => console.error(`  ${line}`),
    });
    console.log(
      `${result.ref} ${result.built ? 'built' : 'up to date'} (id ${result.id.slice(7, 19)}, base ${result.base}, ` +
        `inputs ${result.inputsHash}, ${result.durationMs} ms)`,
    );
    return EXIT.ok;
  } finally {
    await runtime.close();
  }
}

export async function reap({ values }: CommandInput<typeof reapOptions>): Promise<number> {
  const runtime = createDockerRuntime();
  try {
    const report = await runtime.reap({ includeUnknownOwners: values.all });
    if (values.json) console.log(JSON.stringify(report, null, 2));
    else {
      console.log(
        `removed ${report.removedContainers.length} container(s), ${report.removedVolumes.length} volume(s); ` +
          `kept ${report.kept.length} of live owners`,
      );
      for (const name of [...report.removedContainers, ...report.removedVolumes]) console.log(`  removed ${name}`);
    }
    return EXIT.ok;
  } finally {
    await runtime.close();
  }
}

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

/** Checks that need the config: the allowed roots (against the staging deny-list) and the API token. */
function configChecks(loaded: LoadedConfig): Check[] {
  const checks: Check[] = [];
  const roots = (loaded.config.box.allowedRoots ?? [loaded.configDir]).map((r) => resolve(loaded.configDir, r));
  for (const root of roots) {
    try {
      const denied = deniedFolder(realpathSync(root));
      // A root such as /tmp is fine (folders below it are staged; it never is itself); a root
      // inside a system folder can never have anything staged.
      const detail =
        denied === null
          ? `${root} exists`
          : denied.below
            ? `${root}: ${denied.rule}, so no server folder under it is ever staged; allow a project folder elsewhere`
            : `${root} exists`;
      checks.push({ name: 'root', ok: denied === null || !denied.below, detail });
    } catch {
      checks.push({ name: 'root', ok: false, detail: `${root} (box.allowedRoots) does not exist` });
    }
  }
  if (loaded.config.server.token !== undefined)
    checks.push({ name: 'token', ok: true, detail: 'set in the config (server.token)' });
  else {
    const file = join(loaded.stateDir, TOKEN_FILE_NAME);
    try {
      const mode = statSync(file).mode & 0o777;
      checks.push({
        name: 'token',
        ok: mode === 0o600,
        detail: mode === 0o600 ? `${file} (0600)` : `${file} has mode ${mode.toString(8)}; it must be 0600`,
      });
    } catch {
      checks.push({ name: 'token', ok: true, detail: `none yet; serve will generate ${file} (0600)` });
    }
  }
  return checks;
}

export async function doctor({ values }: CommandInput<typeof doctorOptions>): Promise<number> {
  const loaded = values.config === undefined ? null : loadConfig(values.config);
  const image = values.image ?? loaded?.config.box.image ?? DEFAULT_SANDBOX_IMAGE;
  const checks: Check[] = loaded === null ? [] : configChecks(loaded);
  const runtime = createDockerRuntime();
  try {
    try {
      const engine = await runtime.ping();
      checks.unshift({
        name: 'engine',
        ok: true,
        detail:
          `Docker ${engine.version} (API ${engine.apiVersion}), ` +
          `${engine.os}/${engine.arch}, cgroup v${engine.cgroupVersion}`,
      });
    } catch (err) {
      checks.unshift({ name: 'engine', ok: false, detail: describeError(err) });
    }
    if (checks[0]?.ok === true) {
      const info = await runtime.imageInfo(image);
      checks.push({
        name: 'image',
        ok: info !== null,
        detail:
          info === null ? `${image} is missing: run \`mcp-box image build\`` : `${image} (${info.id.slice(7, 19)})`,
      });
      if (info !== null) {
        try {
          // ensureSession runs the hardening self-check and refuses a session that fails it.
          const session = await runtime.ensureSession(resolveProfile({ image, memoryMb: 256, pidsLimit: 64 }));
          checks.push({
            name: 'hardening',
            ok: true,
            detail:
              'CapEff 0, NoNewPrivs 1, seccomp filter, non-root, read-only rootfs, ' +
              'pids/memory limits, no Docker socket',
          });
          await session.remove();
        } catch (err) {
          checks.push({ name: 'hardening', ok: false, detail: describeError(err) });
        }
      }
    }
  } finally {
    await runtime.close().catch(() => undefined);
  }
  if (values.json) console.log(JSON.stringify({ ok: checks.every((c) => c.ok), checks }, null, 2));
  else for (const c of checks) console.log(`${c.ok ? 'ok  ' : 'FAIL'} ${c.name.padEnd(10)} ${c.detail}`);
  if (checks[0]?.ok === false) return EXIT.engineUnreachable;
  return checks.every((c) => c.ok) ? EXIT.ok : EXIT.failed;
}
