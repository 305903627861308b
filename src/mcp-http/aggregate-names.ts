/**
 * Public names of the aggregate MCP endpoint: every (server, name) pair of one kind (tools, prompts, resources, …)
 * gets one name that is unique across all servers and a valid MCP tool name.
 *
 *   plain     `${server}__${name}` with every character outside `[A-Za-z0-9_-]` replaced by `_` (server names may
 *             hold `.`), so every public name matches `^[A-Za-z0-9_-]{1,64}$`
 *   too long  more than 64 characters: cut to 55 and ended with `-` and 8 hex characters of
 *             sha256(`server + "\0" + name`), exactly 64
 *   collision two different pairs that give the same name: the pairs are sorted by (server, name) in plain code-unit
 *             order, the first keeps the name, each later one gets the hashed form (and, in the unlikely case that
 *             is taken too, a hash over a counter as well); each collision gives one warning naming both pairs and
 *             the name each got
 *
 * The result depends on the set of pairs only, never on their order; the same pair twice is one entry. Never throws.
 */
import { createHash } from 'node:crypto';

/** Where a public name comes from. */
export interface NameOrigin {
  server: string;
  name: string;
}

export interface NamespacedNames {
  /** Public name → its origin, in (server, name) order. */
  names: Map<string, NameOrigin>;
  /** The public name of a pair, or undefined when the pair was not among the entries. */
  publicName(server: string, name: string): string | undefined;
  /** One readable line per collision. */
  warnings: string[];
}

/** The longest public name. */
export const MAX_PUBLIC_NAME = 64;
/** Between a server's name and the entry's name. */
export const NAME_SEPARATOR = '__';

const HASH_CHARS = 8;

/** Plain code-unit order (not locale order), so the outcome is the same on every machine. */
export const compareCodeUnits = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

const compareOrigins = (a: NameOrigin, b: NameOrigin): number =>
  compareCodeUnits(a.server, b.server) || compareCodeUnits(a.name, b.name);

const keyOf = (server: string, name: string): string => JSON.stringify([server, name]);

/** Every code point outside `[A-Za-z0-9_-]` becomes one `_`. */
export const sanitizeName = (text: string): string => text.replace(/[^A-Za-z0-9_-]/gu, '_');

function hashed(plain: string, server: string, name: string, round: number): string {
  const input = round === 0 ? `${server}\0${name}` : `${server}\0${name}\0${round}`;
  const hex = createHash('sha256').update(input).digest('hex').slice(0, HASH_CHARS);
  return `${plain.slice(0, MAX_PUBLIC_NAME - HASH_CHARS - 1)}-${hex}`;
}

const describe = (o: NameOrigin): string => `server ${JSON.stringify(o.server)} name ${JSON.stringify(o.name)}`;

/** Names every (server, name) pair; see the top of this file for the rules. */
export function namespaceNames(entries: readonly NameOrigin[]): NamespacedNames {
  const unique = new Map<string, NameOrigin>();
  for (const e of entries) {
    const server = String(e.server);
    const name = String(e.name);
    const key = keyOf(server, name);
    if (!unique.has(key)) unique.set(key, { server, name });
  }
  const sorted = [...unique.values()].sort(compareOrigins);

  const names = new Map<string, NameOrigin>();
  const byKey = new Map<string, string>();
  const warnings: string[] = [];

  for (const origin of sorted) {
    const plain = sanitizeName(`${origin.server}${NAME_SEPARATOR}${origin.name}`);
    let chosen = plain.length <= MAX_PUBLIC_NAME ? plain : hashed(plain, origin.server, origin.name, 0);
    const holder = names.get(chosen);
    if (holder !== undefined) {
      const wanted = chosen;
      let round = 0;
      chosen = hashed(plain, origin.server, origin.name, round);
      while (names.has(chosen)) chosen = hashed(plain, origin.server, origin.name, ++round);
      warnings.push(
        `name collision on "${wanted}": ${describe(holder)} keeps "${wanted}", ` +
          `${describe(origin)} is named "${chosen}"`,
      );
    }
    names.set(chosen, origin);
    byKey.set(keyOf(origin.server, origin.name), chosen);
  }

  return {
    names,
    publicName: (server, name) => byKey.get(keyOf(server, name)),
    warnings,
  };
}
