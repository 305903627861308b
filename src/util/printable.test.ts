import { describe, expect, it } from 'vitest';
import { printable } from './printable.js';

describe('printable', () => {
  it(
    'removes OSC 52 (clipboard write), colours, cursor moves and bare controls; keeps text, ' +
      'tabs, newlines and Unicode',
    () => {
      const hostile =
        'ok\u001b]52;c;ZWNobyBwd25lZA==\u0007 red:\u001b[31mRED\u001b[0m ' +
        '\u001b[2J\u001b[Hcleared\rback\u0008\u0000 tab\there\n' +
        'next ✓ 箱 \u009b31mC1\u001bPdcs\u001b\\end';
      expect(printable(hostile)).toBe('ok red:RED clearedback tab\there\nnext ✓ 箱 C1end');
    },
  );

  it('leaves ordinary text alone', () => {
    expect(printable('"crash" exited with code 3 — stderr: boom')).toBe('"crash" exited with code 3 — stderr: boom');
  });
});
