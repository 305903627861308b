import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { checkOriginAndHost, checkToken, sameSecret, type GuardOptions } from './request-guard.js';

const TOKEN = 'tok-3f9a1c2e7b';
const PORT = 5410;

/** A request as the guard sees it: Node lower-cases header names. */
function req(headers: Record<string, string | undefined>, url = '/v1/servers'): IncomingMessage {
  return { headers, url, method: 'GET' } as unknown as IncomingMessage;
}

function opts(overrides: Partial<GuardOptions> = {}): GuardOptions {
  return { token: TOKEN, port: () => PORT, ...overrides };
}

describe('checkOriginAndHost', () => {
  it.each(['127.0.0.1', 'localhost', '[::1]'])('accepts the loopback name %s on the bound port', (name) => {
    expect(checkOriginAndHost(req({ host: `${name}:${PORT}` }), opts())).toBeNull();
  });

  it('compares Host case-insensitively', () => {
    expect(checkOriginAndHost(req({ host: `LocalHost:${PORT}` }), opts())).toBeNull();
  });

  it.each([
    ['another port', `127.0.0.1:${PORT + 1}`],
    ['no port (the bound port is not 80)', '127.0.0.1'],
    ['a foreign name', `evil.example:${PORT}`],
    ['a rebinding name that starts like loopback', `127.0.0.1.nip.io:${PORT}`],
    ['a loopback name with a trailing dot', `localhost.:${PORT}`],
    ['an empty Host', ''],
  ])('refuses %s with 403', (_what, host) => {
    expect(checkOriginAndHost(req({ host }), opts())).toMatchObject({
      status: 403,
      code: 'FORBIDDEN',
      message: expect.stringContaining(JSON.stringify(host)) as unknown,
    });
  });

  it('refuses a request without a Host header and says how to allow a name', () => {
    const refusal = checkOriginAndHost(req({}), opts());
    expect(refusal).toMatchObject({ status: 403, code: 'FORBIDDEN' });
    expect(refusal?.message).toContain('server.allowedHosts');
  });

  it('accepts the bare loopback names when the bound port is 80', () => {
    const on80 = opts({ port: () => 80 });
    expect(checkOriginAndHost(req({ host: 'localhost' }), on80)).toBeNull();
    expect(checkOriginAndHost(req({ host: 'localhost:80' }), on80)).toBeNull();
    expect(checkOriginAndHost(req({ host: 'localhost' }), opts())).not.toBeNull();
  });

  it('reads the port at every check (the server may bind after the guard is made)', () => {
    let port = 0;
    const late = opts({ port: () => port });
    expect(checkOriginAndHost(req({ host: `127.0.0.1:${PORT}` }), late)).not.toBeNull();
    port = PORT;
    expect(checkOriginAndHost(req({ host: `127.0.0.1:${PORT}` }), late)).toBeNull();
  });

  it('accepts the extra allowedHosts exactly as given (case-insensitive), nothing broader', () => {
    const o = opts({ allowedHosts: ['Box.Internal:8443', 'mcp-box'] });
    expect(checkOriginAndHost(req({ host: 'box.internal:8443' }), o)).toBeNull();
    expect(checkOriginAndHost(req({ host: 'MCP-BOX' }), o)).toBeNull();
    expect(checkOriginAndHost(req({ host: 'box.internal' }), o)).not.toBeNull();
    expect(checkOriginAndHost(req({ host: 'mcp-box:8443' }), o)).not.toBeNull();
    expect(checkOriginAndHost(req({ host: 'sub.box.internal:8443' }), o)).not.toBeNull();
    // Loopback stays accepted.
    expect(checkOriginAndHost(req({ host: `localhost:${PORT}` }), o)).toBeNull();
  });

  it.each(['http://127.0.0.1:5410', 'https://evil.example', 'null', 'file://'])(
    'refuses any browser Origin (%s), even with a good Host',
    (origin) => {
      expect(checkOriginAndHost(req({ origin, host: `127.0.0.1:${PORT}` }), opts())).toMatchObject({
        status: 403,
        code: 'FORBIDDEN',
        message: expect.stringContaining('browsers') as unknown,
      });
    },
  );

  it('checks Origin before Host', () => {
    expect(
      checkOriginAndHost(req({ origin: 'https://evil.example', host: 'evil.example' }), opts())?.message,
    ).toContain('browsers');
  });

  it('treats an empty Origin as absent', () => {
    expect(checkOriginAndHost(req({ origin: '', host: `127.0.0.1:${PORT}` }), opts())).toBeNull();
  });
});

describe('checkToken', () => {
  it('accepts the token as a bearer credential', () => {
    expect(checkToken(req({ authorization: `Bearer ${TOKEN}` }), opts())).toBeNull();
  });

  it.each([`bearer ${TOKEN}`, `BEARER ${TOKEN}`, `Bearer   ${TOKEN}`, `Bearer ${TOKEN}  `, `Bearer\t${TOKEN}`])(
    'accepts %j (scheme in any case, surrounding whitespace)',
    (authorization) => {
      expect(checkToken(req({ authorization }), opts())).toBeNull();
    },
  );

  it.each([
    ['no Authorization header', undefined],
    ['an empty header', ''],
    ['the scheme alone', 'Bearer'],
    ['another scheme', `Basic ${Buffer.from(`user:${TOKEN}`).toString('base64')}`],
    ['the token without a scheme', TOKEN],
    ['two credentials', `Bearer ${TOKEN} ${TOKEN}`],
    ['a leading space', ` Bearer ${TOKEN}`],
  ])('refuses %s with 401 "Missing bearer token"', (_what, authorization) => {
    expect(checkToken(req({ authorization }), opts())).toMatchObject({
      status: 401,
      code: 'UNAUTHORIZED',
      message: expect.stringContaining('Missing bearer token') as unknown,
    });
  });

  it.each([
    ['another token', 'tok-0000000000'],
    ['a prefix of the token', TOKEN.slice(0, -1)],
    ['the token with more after it', `${TOKEN}x`],
    ['the token in another case', TOKEN.toUpperCase()],
  ])('refuses %s with 401 "Wrong bearer token"', (_what, given) => {
    expect(checkToken(req({ authorization: `Bearer ${given}` }), opts())).toEqual({
      status: 401,
      code: 'UNAUTHORIZED',
      message: 'Wrong bearer token',
    });
  });

  it('never takes the token from the query string', () => {
    expect(checkToken(req({}, `/v1/servers?token=${TOKEN}`), opts())).toMatchObject({ status: 401 });
    expect(checkToken(req({}, `/v1/sessions/s/processes/p/ws?access_token=${TOKEN}`), opts())).toMatchObject({
      status: 401,
    });
  });

  it('never puts a token, given or expected, in its message', () => {
    for (const authorization of [`Bearer ${TOKEN}x`, `Basic ${TOKEN}`, 'Bearer wrong-guess']) {
      const refusal = checkToken(req({ authorization }), opts());
      expect(refusal).not.toBeNull();
      expect(refusal?.message).not.toContain(TOKEN);
      expect(refusal?.message).not.toContain('wrong-guess');
    }
  });
});

describe('sameSecret', () => {
  it('is true only for the same string', () => {
    expect(sameSecret(TOKEN, TOKEN)).toBe(true);
    expect(sameSecret('', '')).toBe(true);
    expect(sameSecret('pässwörd-ß', 'pässwörd-ß')).toBe(true);
    expect(sameSecret(TOKEN, `${TOKEN.slice(0, -1)}X`)).toBe(false);
    expect(sameSecret('pässwörd-ß', 'passwort-s')).toBe(false);
  });

  it('compares strings of different lengths without throwing (both sides are hashed first)', () => {
    expect(sameSecret('a', TOKEN)).toBe(false);
    expect(sameSecret(TOKEN, '')).toBe(false);
    expect(sameSecret(`${TOKEN}${TOKEN}`, TOKEN)).toBe(false);
  });
});
