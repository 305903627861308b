/** Replaces configured secret values with `***` in every captured stream and error record. */
export class Redactor {
  private secrets: string[] = [];

  constructor(secrets: Iterable<string> = []) {
    this.add(secrets);
  }

  /** Values shorter than 4 characters are not treated as secrets (they would redact everything). */
  add(secrets: Iterable<string>): void {
    const next = new Set(this.secrets);
    for (const s of secrets) if (typeof s === 'string' && s.length >= 4) next.add(s);
    // Longest first, so a secret that contains another is replaced whole.
    this.secrets = [...next].sort((a, b) => b.length - a.length);
  }

  redact(text: string): string {
    let out = text;
    for (const secret of this.secrets) if (out.includes(secret)) out = out.split(secret).join('***');
    return out;
  }
}
