/**
 * Tenant text made safe for an operator's terminal: escape sequences (CSI such as colours and
 * cursor moves, OSC such as OSC 52 that writes the clipboard, DCS/APC/PM/SOS strings) and every
 * other control character except tab and newline are removed.
 */
const STRING_SEQUENCE =
  // eslint-disable-next-line no-control-regex
  /\u001b[\]PX^_][\s\S]*?(?:\u0007|\u001b\\|\u009c|$)|[\u0090\u009d\u009e\u009f\u0098][\s\S]*?(?:\u0007|\u001b\\|\u009c|$)/g;
// eslint-disable-next-line no-control-regex
const CSI = /(?:\u001b\[|\u009b)[0-?]*[ -/]*[@-~]?/g;
// eslint-disable-next-line no-control-regex
const OTHER_ESCAPE = /\u001b[ -/]*[0-~]?/g;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

export function printable(text: string): string {
  return text.replace(STRING_SEQUENCE, '').replace(CSI, '').replace(OTHER_ESCAPE, '').replace(CONTROL, '');
}
