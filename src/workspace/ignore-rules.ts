/**
 * What staging leaves out: tool caches, VCS data, virtualenvs, `node_modules` when a lockfile
 * install will recreate it, plus the patterns of an optional `.mcpboxignore` in the folder.
 *
 * Matching is gitignore's, done by the maintained `ignore` package (case-sensitive): our own
 * glob→regex turned `**a**a…b` into a backtracking expression that froze the process on a long
 * name. `ignore` compiles single-segment wildcards without backtracking, but a chain of globstar
 * segments still backtracks over a deep path (16 of them took 6.8 s on a 31-level path), and every
 * pattern is tried on every entry: so a `.mcpboxignore` is bounded (lines, length, `**` per line and
 * in total), and a file over a bound fails the stage naming the line.
 */
import ignore, { type Ignore } from 'ignore';
import { BoxError } from '../errors/box-error.js';

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

/** Bounds on a `.mcpboxignore`: what keeps matching cheap for every entry of a large folder. */
export const IGNORE_FILE_LIMITS = {
  maxPatterns: 1000,
  maxPatternLength: 1024,
  maxGlobstarsPerPattern: 3,
  maxGlobstars: 32,
};

export class IgnoreRules {
  private readonly matcher: Ignore;
  readonly patterns: string[];

  constructor(patterns: string[]) {
    this.patterns = patterns;
    // Lines are trimmed on both sides (gitignore keeps leading spaces; we never did).
    this.matcher = ignore({ ignorecase: false }).add(
      patterns.map((p) => p.trim()).filter((p) => p !== '' && !p.startsWith('#')),
    );
  }

  /** Defaults, `node_modules` when a root lockfile exists, then the folder's `.mcpboxignore`. */
  static forFolder(rootNames: Set<string>, mcpboxignore: string | null): IgnoreRules {
    const patterns = [...DEFAULT_IGNORES];
    if (NODE_LOCKFILES.some((f) => rootNames.has(f))) patterns.push('/node_modules/');
    if (mcpboxignore !== null) patterns.push(...checkIgnoreFile(mcpboxignore.split(/\r?\n/)));
    return new IgnoreRules(patterns);
  }

  /**
   * `rel` is a `/`-separated path relative to the folder root. The last matching rule wins; a path
   * under an ignored folder is ignored (the walk never gets there anyway).
   */
  ignores(rel: string, isDir: boolean): boolean {
    return this.matcher.ignores(isDir ? `${rel}/` : rel);
  }
}

function checkIgnoreFile(lines: string[]): string[] {
  const tooComplex = (line: number, what: string): never => {
    throw new BoxError(
      'STAGE_FAILED',
      'workspace_stage',
      `Cannot use .mcpboxignore: line ${line} ${what}; simplify the file`,
      {
        details: { path: '.mcpboxignore', line, limits: IGNORE_FILE_LIMITS },
      },
    );
  };
  let patterns = 0;
  let globstars = 0;
  lines.forEach((raw, i) => {
    const p = raw.trim();
    if (p === '' || p.startsWith('#')) return;
    if (++patterns > IGNORE_FILE_LIMITS.maxPatterns)
      tooComplex(i + 1, `is pattern ${patterns}, more than ${IGNORE_FILE_LIMITS.maxPatterns}`);
    if (p.length > IGNORE_FILE_LIMITS.maxPatternLength)
      tooComplex(i + 1, `is longer than ${IGNORE_FILE_LIMITS.maxPatternLength} characters`);
    // Only a run of asterisks that fills a path segment is a globstar (`**a` is `*a`); those backtrack.
    const stars = p.split('/').filter((segment) => /^!?\*{2,}$/.test(segment)).length;
    if (stars > IGNORE_FILE_LIMITS.maxGlobstarsPerPattern)
      tooComplex(i + 1, `has more than ${IGNORE_FILE_LIMITS.maxGlobstarsPerPattern} "**" segments`);
    globstars += stars;
    if (globstars > IGNORE_FILE_LIMITS.maxGlobstars)
      tooComplex(i + 1, `brings the file to more than ${IGNORE_FILE_LIMITS.maxGlobstars} "**" segments`);
  });
  return lines;
}
