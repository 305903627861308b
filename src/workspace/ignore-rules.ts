/**
 * What staging leaves out: tool caches, VCS data, virtualenvs, `node_modules` when a lockfile
 * install will recreate it, plus the patterns of an optional `.mcpboxignore` in the folder
 * (gitignore-like: `#` comments, `!` re-includes, `/` anchors to the root, a trailing `/`
 * matches folders only, `*`, `?` and `**` globs).
 */

export const DEFAULT_IGNORES = [
  '.git/',
  '.hg/',
  '.svn/',
  '__pycache__/',
  '*.pyc',
  '.pytest_cache/',
  '.mypy_cache/',
  '.ruff_cache/',
  '.tox/',
  '.nox/',
  '.cache/',
  '.venv/',
  'venv/',
  '.DS_Store',
  '/.mcp-box/',
  '/.mcp-box-stage/',
];

export const NODE_LOCKFILES = ['package-lock.json', 'npm-shrinkwrap.json', 'pnpm-lock.yaml', 'yarn.lock'];

interface Rule {
  regex: RegExp;
  negate: boolean;
  dirOnly: boolean;
}

export class IgnoreRules {
  private readonly rules: Rule[];
  readonly patterns: string[];

  constructor(patterns: string[]) {
    this.patterns = patterns;
    this.rules = patterns.map((p) => p.trim()).filter((p) => p !== '' && !p.startsWith('#')).map(compile);
  }

  /** Defaults, `node_modules` when a root lockfile exists, then the folder's `.mcpboxignore`. */
  static forFolder(rootNames: Set<string>, mcpboxignore: string | null): IgnoreRules {
    const patterns = [...DEFAULT_IGNORES];
    if (NODE_LOCKFILES.some((f) => rootNames.has(f))) patterns.push('/node_modules/');
    if (mcpboxignore !== null) patterns.push(...mcpboxignore.split(/\r?\n/));
    return new IgnoreRules(patterns);
  }

  /** `rel` is a `/`-separated path relative to the folder root. The last matching rule wins. */
  ignores(rel: string, isDir: boolean): boolean {
    let ignored = false;
    for (const rule of this.rules) {
      if (rule.dirOnly && !isDir) continue;
      if (rule.regex.test(rel)) ignored = !rule.negate;
    }
    return ignored;
  }
}

function compile(raw: string): Rule {
  let pattern = raw;
  const negate = pattern.startsWith('!');
  if (negate) pattern = pattern.slice(1);
  const dirOnly = pattern.endsWith('/');
  if (dirOnly) pattern = pattern.slice(0, -1);
  // A pattern with a slash (other than a trailing one) is anchored to the root.
  const anchored = pattern.startsWith('/') || pattern.includes('/');
  if (pattern.startsWith('/')) pattern = pattern.slice(1);
  let body = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*' && pattern[i + 1] === '*') {
      if (pattern[i + 2] === '/') {
        // `**/` matches zero or more whole folders.
        body += '(?:.*/)?';
        i += 2;
      } else {
        body += '.*';
        i++;
      }
    } else if (c === '*') body += '[^/]*';
    else if (c === '?') body += '[^/]';
    else body += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  const regex = new RegExp(anchored ? `^${body}$` : `(^|/)${body}$`);
  return { regex, negate, dirOnly };
}
