/**
 * Validates pip requirement files. Lines that change where packages come from (index options),
 * or that point outside the server's folder (`-r ../x`, `-e /abs`, `file:` URLs, `../pkg`), are
 * rejected: the index is configured by the operator, not by the untrusted folder.
 */
import { posix } from 'node:path';
import { BoxError } from '../errors/box-error.js';

const INDEX_OPTIONS = [
  '-i',
  '--index-url',
  '--extra-index-url',
  '--no-index',
  '-f',
  '--find-links',
  '--trusted-host',
  '--pre',
  '--prefer-binary',
  '--only-binary',
  '--no-binary',
  '--use-feature',
  '--global-option',
  '--config-settings',
];
const INCLUDE_OPTIONS = ['-r', '--requirement', '-c', '--constraint'];
const EDITABLE_OPTIONS = ['-e', '--editable'];

export interface RequirementsCheck {
  /** Other requirement files (relative to the folder root) this one includes. */
  includes: string[];
}

/** Checks one requirements file at `rel` (relative to the folder root). Throws INVALID_REQUIREMENT. */
export function checkRequirements(rel: string, text: string): RequirementsCheck {
  const includes: string[] = [];
  const lines = joinContinuations(text);
  lines.forEach(({ line, number }) => {
    const content = stripComment(line).trim();
    if (content === '') return;
    const reject = (why: string): never => {
      throw new BoxError(
        'INVALID_REQUIREMENT',
        'dep_install',
        `${rel}:${number}: ${why}: ${JSON.stringify(content.slice(0, 200))}`,
        {
          details: { file: rel, line: number },
        },
      );
    };
    let [option, ...rest] = content.split(/[\s=]+/);
    // `-rfile.txt`, `-cfile`, `-e./pkg`: pip accepts the short options glued to their value.
    const glued = /^-([rce])(.+)$/.exec(option ?? '');
    if (glued !== null) {
      option = `-${glued[1]}`;
      rest = [glued[2] as string, ...rest];
    }
    const value = rest.join(' ').trim();
    const lower = (option ?? '').toLowerCase();
    if (lower === '--require-hashes') return;
    if (INDEX_OPTIONS.some((o) => lower === o || lower.startsWith(`${o}=`)))
      reject(
        'options that change the package index are not allowed in requirement files (configure box.install instead)',
      );
    if (INCLUDE_OPTIONS.includes(lower)) {
      const target = insideFolder(rel, value);
      if (target === null) reject('includes a file outside the server folder');
      includes.push(target as string);
      return;
    }
    if (EDITABLE_OPTIONS.includes(lower)) {
      if (/^[a-z+]+:\/\//i.test(value) || value.startsWith('git+'))
        reject('editable VCS or URL installs are not allowed');
      if (insideFolder(rel, value) === null) reject('an editable install outside the server folder is not allowed');
      return;
    }
    if (lower.startsWith('-')) reject(`unsupported option ${option}`);
    if (/(^|\s|@\s*)file:/i.test(content)) reject('file: URLs are not allowed');
    const first = content.split(/\s|;|\[|@/)[0] ?? '';
    // pip treats a requirement with a slash as a path: it must stay inside the folder.
    if (first.includes('/') && !/^[a-z][a-z0-9+.-]*:\/\//i.test(first) && insideFolder(rel, first) === null)
      reject('a local path outside the server folder is not allowed');
  });
  return { includes };
}

/** The folder-relative path of `target` referenced from file `fromRel`, or null when it leaves the folder. */
function insideFolder(fromRel: string, target: string): string | null {
  if (target === '' || target.startsWith('/') || /^[a-z]+:/i.test(target)) return null;
  const resolved = posix.normalize(posix.join(posix.dirname(fromRel), target));
  if (resolved === '..' || resolved.startsWith('../')) return null;
  return resolved;
}

function stripComment(line: string): string {
  const hash = line.search(/(^|\s)#/);
  return hash === -1 ? line : line.slice(0, hash);
}

function joinContinuations(text: string): { line: string; number: number }[] {
  const out: { line: string; number: number }[] = [];
  let pending = '';
  let start = 0;
  text.split(/\r?\n/).forEach((raw, i) => {
    if (pending === '') start = i + 1;
    if (raw.endsWith('\\')) pending += raw.slice(0, -1) + ' ';
    else {
      out.push({ line: pending + raw, number: start });
      pending = '';
    }
  });
  if (pending !== '') out.push({ line: pending, number: start });
  return out;
}
