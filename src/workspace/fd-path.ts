/**
 * Whether an open descriptor is the file we meant to open. `O_NOFOLLOW` guards only the last
 * component of a path; a folder on the way swapped for a symlink between the walk and the open
 * still redirects it. On Linux the kernel names what a descriptor really opened in
 * `/proc/self/fd/<fd>`: it must be the folder's real path plus the entry's path. Elsewhere there is
 * no such name and the check passes (staging runs on Linux hosts).
 */
import { readlinkSync } from 'node:fs';
import { readlink } from 'node:fs/promises';

export async function opensAt(fd: number, expectedReal: string): Promise<boolean> {
  if (process.platform !== 'linux') return true;
  try {
    return (await readlink(`/proc/self/fd/${fd}`)) === expectedReal;
  } catch {
    return false;
  }
}

export function opensAtSync(fd: number, expectedReal: string): boolean {
  if (process.platform !== 'linux') return true;
  try {
    return readlinkSync(`/proc/self/fd/${fd}`) === expectedReal;
  } catch {
    return false;
  }
}
