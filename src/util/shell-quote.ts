/**
 * A word for POSIX sh, single-quoted: a single quote inside is closed, escaped and reopened, so the value reaches
 * the program unchanged.
 */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
