/**
 * Replaces secret values with `***` in every captured stream and error record — also in their
 * URL-encoded and base64 forms (a secret in a `Basic` header or a query string). What a secret is
 * comes from `secretValues`: the values of env keys that name one, never every env value.
 */
import { redactCapabilities } from '../util/capability-url.js';
import { mapStrings } from '../util/map-strings.js';

/** Env keys whose values are secrets (the name says so). */
export const SECRET_KEY_PATTERN =
  /KEY|TOKEN|SECRET|PASSW(OR)?D|PASS\b|_PASS|PWD|CREDENTIAL|AUTH|PRIVATE|COOKIE|SESSION|SIGNATURE|CERT/i;
/** Shorter values are not treated as secrets (they would redact everything). */
const MIN_SECRET_LENGTH = 4;

/** The secret values of an env: those under a secret-sounding key, and those the definition names. */
export function secretValues(env: Record<string, string>, alsoSecret: Iterable<string> = []): string[] {
  const named = new Set(alsoSecret);
  return Object.entries(env)
    .filter(([key]) => named.has(key) || SECRET_KEY_PATTERN.test(key))
    .map(([, value]) => value);
}

/** Credentials inside URLs (an index URL `https://user:pass@host/simple`): the password and `user:pass`. */
export function urlCredentials(urls: Iterable<string | undefined>): string[] {
  const out: string[] = [];
  for (const raw of urls) {
    if (raw === undefined) continue;
    try {
      const url = new URL(raw);
      if (url.password !== '')
        out.push(
          decodeURIComponent(url.password),
          `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`,
        );
      else if (url.username !== '') out.push(decodeURIComponent(url.username));
    } catch {
      // not a URL: nothing to take from it
    }
  }
  return out;
}

/** The forms a secret may be written in: as is, URL-encoded, and base64 at each of the 3 alignments. */
function forms(secret: string): string[] {
  const out = new Set([secret, encodeURIComponent(secret)]);
  const bytes = Buffer.from(secret, 'utf8');
  for (let shift = 0; shift < 3; shift++) {
    // Inside a longer base64 text the secret's bytes start at any offset mod 3: with `shift` bytes
    // before it, the characters wholly determined by the secret alone are the same wherever it is.
    const padded = Buffer.concat([Buffer.alloc(shift), bytes]);
    const encoded = padded.toString('base64').replace(/=+$/, '');
    const lead = Math.ceil((shift * 4) / 3);
    const tailBytes = (shift + bytes.length) % 3;
    const trail = tailBytes === 0 ? 0 : tailBytes + 1;
    const core = encoded.slice(lead, encoded.length - trail);
    if (core.length >= 8) {
      out.add(core);
      out.add(core.replace(/\+/g, '-').replace(/\//g, '_'));
    }
  }
  return [...out];
}

export class Redactor {
  private secrets: string[] = [];
  private longest = 0;

  constructor(secrets: Iterable<string> = []) {
    this.add(secrets);
  }

  add(secrets: Iterable<string>): void {
    const next = new Set(this.secrets);
    for (const s of secrets)
      if (typeof s === 'string' && s.length >= MIN_SECRET_LENGTH) for (const f of forms(s)) next.add(f);
    // Longest first, so a secret that contains another is replaced whole.
    this.secrets = [...next].sort((a, b) => b.length - a.length);
    this.longest = this.secrets[0]?.length ?? 0;
  }

  /** The longest text that is redacted: a stream cut anywhere must keep this much minus one back. */
  get maxLength(): number {
    return this.longest;
  }

  redact(text: string): string {
    // A relay URL a server was told about (its env, an argument) is a credential too.
    let out = redactCapabilities(text);
    for (const secret of this.secrets) if (out.includes(secret)) out = out.split(secret).join('***');
    return out;
  }

  /** Redacts every string inside a JSON-like value (error details, records), keeping its shape. */
  redactDeep<T>(value: T): T {
    return mapStrings(value, (t) => this.redact(t));
  }
}
