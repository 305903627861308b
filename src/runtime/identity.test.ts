import { describe, expect, it } from 'vitest';
import { IDENTITY_PARENT, identityEnv, identityForSlot, SLOT_COUNT, SLOT_UID_BASE } from './identity.js';

describe('identityForSlot', () => {
  it.each([
    { slot: 0, token: 'abc', uid: 100000 },
    { slot: 1, token: 'deadbeef', uid: 100001 },
    { slot: 42, token: '0123456789abcdef', uid: 100042 },
    { slot: SLOT_COUNT - 1, token: 't', uid: 100999 },
  ])('slot $slot → uid $uid, folders under the slot root', ({ slot, token, uid }) => {
    const id = identityForSlot(slot, token);
    const root = `/workspace/.mcp/s${slot}-${token}`;
    expect(id).toEqual({
      slot,
      uid,
      gid: uid,
      root,
      home: `${root}/home`,
      tmp: `${root}/tmp`,
      workspace: `${root}/workspace`,
    });
    expect(uid).toBe(SLOT_UID_BASE + slot);
    expect(id.root.startsWith(`${IDENTITY_PARENT}/`)).toBe(true);
  });

  it('uses a random 16-hex token by default, different each time', () => {
    const a = identityForSlot(3);
    const b = identityForSlot(3);
    expect(a.root).toMatch(/^\/workspace\/\.mcp\/s3-[0-9a-f]{16}$/);
    expect(b.root).toMatch(/^\/workspace\/\.mcp\/s3-[0-9a-f]{16}$/);
    expect(a.root).not.toBe(b.root);
    expect(a.uid).toBe(b.uid);
  });

  it('gives distinct uids to distinct slots', () => {
    const uids = Array.from({ length: SLOT_COUNT }, (_, slot) => identityForSlot(slot, 'x').uid);
    expect(new Set(uids).size).toBe(SLOT_COUNT);
    expect(Math.min(...uids)).toBe(SLOT_UID_BASE);
  });

  it.each([-1, SLOT_COUNT, SLOT_COUNT + 1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])('rejects slot %s', (slot) => {
    expect(() => identityForSlot(slot, 'x')).toThrow(RangeError);
    expect(() => identityForSlot(slot, 'x')).toThrow(/slot out of range/);
  });
});

describe('identityEnv', () => {
  it('points HOME, temp dirs and caches into the identity root', () => {
    const id = identityForSlot(7, 'feed');
    const root = '/workspace/.mcp/s7-feed';
    expect(identityEnv(id)).toEqual({
      HOME: `${root}/home`,
      TMPDIR: `${root}/tmp`,
      TMP: `${root}/tmp`,
      TEMP: `${root}/tmp`,
      XDG_CACHE_HOME: `${root}/cache`,
      npm_config_cache: `${root}/cache/npm`,
      PIP_CACHE_DIR: `${root}/cache/pip`,
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    });
  });

  it('keeps every path of two identities apart', () => {
    const a = identityEnv(identityForSlot(1, 'aaa'));
    const b = identityEnv(identityForSlot(2, 'bbb'));
    for (const key of Object.keys(a) as (keyof typeof a)[]) {
      if (key === 'PATH') continue;
      expect(a[key], key).not.toBe(b[key]);
      expect(a[key]?.startsWith('/workspace/.mcp/s1-aaa/'), key).toBe(true);
    }
  });
});
