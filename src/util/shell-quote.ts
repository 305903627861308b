/** A word for POSIX sh, single-quoted (a `'` inside becomes `'\\''`): it reaches the program unchanged. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
