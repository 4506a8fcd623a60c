import { chmod, readdir, lstat } from 'node:fs/promises';
import path from 'node:path';

/** Sets a tree's files and folders read-only (or writable again, to remove it). Links are left alone. */
export async function setTreeWritable(root: string, writable: boolean): Promise<void> {
  const info = await lstat(root).catch(() => undefined);
  if (!info || info.isSymbolicLink()) return;
  if (info.isDirectory()) {
    if (writable) await chmod(root, 0o755);
    for (const entry of await readdir(root)) await setTreeWritable(path.join(root, entry), writable);
    if (!writable) await chmod(root, 0o555);
  } else {
    await chmod(root, writable ? 0o644 : 0o444);
  }
}
