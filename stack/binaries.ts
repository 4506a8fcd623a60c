import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { StackStartError } from './managed-process.ts';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const stackBinDir = path.join(repoRoot, 'tools', 'stack', 'bin');

/** The path of an installed stack binary, or a clear error saying how to install it. */
export function stackBinary(name: 'temporal' | 'ferretdb'): string {
  const file = path.join(stackBinDir, name);
  if (existsSync(file)) return file;
  throw new StackStartError(`${name} is not installed in ${stackBinDir}; run: npm run stack:install`);
}
