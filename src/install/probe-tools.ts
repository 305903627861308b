/** Which interpreters and installers a session's image has, probed once per image (by content id). */
import type { Session } from '../runtime/types.js';
import type { ToolVersions } from './detect-install.js';

const PROBE = [
  `python3 -c 'import sys; print("python=%d.%d.%d" % sys.version_info[:3])' 2>/dev/null`,
  `ls /usr/share/python-wheels 2>/dev/null | sed -n 's/^pip-\\([^-]*\\)-.*/pip=\\1/p' | head -1`,
  `node -e 'console.log("node=" + process.versions.node)' 2>/dev/null`,
  `command -v npm >/dev/null && echo "npm=$(npm -v 2>/dev/null)"`,
  `command -v uv >/dev/null && echo "uv=$(uv --version 2>/dev/null | cut -d' ' -f2)"`,
  `command -v pnpm >/dev/null && echo "pnpm=$(pnpm -v 2>/dev/null)"`,
  `command -v yarn >/dev/null && echo "yarn=$(yarn -v 2>/dev/null)"`,
  'true',
].join('; ');

/** By image id: a replacement session of the same image (after a container death) is not probed again. */
const byImage = new Map<string, Promise<ToolVersions>>();
const bySession = new WeakMap<Session, Promise<ToolVersions>>();

export function probeTools(session: Session): Promise<ToolVersions> {
  const imageId = session.info.imageId;
  let probe = imageId === undefined ? bySession.get(session) : byImage.get(imageId);
  if (probe === undefined) {
    probe = session
      .exec({ cmd: ['/bin/sh', '-c', PROBE], timeoutMs: 30_000, cwd: '/' })
      .then((r) => parseToolVersions(r.stdout));
    const forget = (): void => void (imageId === undefined ? bySession.delete(session) : byImage.delete(imageId));
    probe.catch(forget);
    if (imageId === undefined) bySession.set(session, probe);
    else byImage.set(imageId, probe);
  }
  return probe;
}

export function parseToolVersions(output: string): ToolVersions {
  const found: Record<string, string> = {};
  for (const line of output.split('\n')) {
    const m = /^(python|pip|node|npm|uv|pnpm|yarn)=(\S+)$/.exec(line.trim());
    if (m !== null) found[m[1] as string] = m[2] as string;
  }
  const get = (k: string): string | null => found[k] ?? null;
  return {
    python: get('python'),
    pip: get('pip'),
    node: get('node'),
    npm: get('npm'),
    uv: get('uv'),
    pnpm: get('pnpm'),
    yarn: get('yarn'),
  };
}
