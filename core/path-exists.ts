import { stat } from 'node:fs/promises';

/** True when something is at the path (file, folder, or a link to one). */
export function pathExists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}
