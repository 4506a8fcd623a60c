import { createHash } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';

/** Folders that are never part of a service's source: dependencies, build output, VCS. */
export const IGNORED_DIRS = new Set(['node_modules', 'dist', 'build', 'coverage', '.git', '.hg', '.svn', '.mcpship', '.turbo', '.cache']);

/** Editor swap/backup/temp files, which come and go while a person types. */
const TEMP_FILE = /(^\.#)|(^#.*#$)|(~$)|(\.sw[a-p]$)|(\.tmp$)|(^\.DS_Store$)|(^4913$)/;

/** True when a path (relative to a service folder, / or \ separated) is not part of its source. */
export function isIgnoredPath(relativePath: string): boolean {
  const parts = relativePath.split(/[\\/]/).filter(Boolean);
  if (parts.some((p) => IGNORED_DIRS.has(p))) return true;
  const base = parts[parts.length - 1] ?? '';
  return TEMP_FILE.test(base);
}

/** The service's source files, relative and sorted, ignored paths left out. */
export async function listSourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string) => {
    const entries = await readdir(path.join(dir, rel), { withFileTypes: true });
    for (const entry of entries) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (isIgnoredPath(child)) continue;
      if (entry.isDirectory()) await walk(child);
      else if (entry.isFile()) out.push(child);
    }
  };
  await walk('');
  return out.sort();
}

export interface TreeHash {
  /** sha256 over every source file's path and bytes; equal trees give equal hashes. */
  hash: string;
  files: string[];
}

export async function hashTree(dir: string): Promise<TreeHash> {
  const files = await listSourceFiles(dir);
  const hash = createHash('sha256');
  for (const file of files) {
    const content = await readFile(path.join(dir, file));
    hash.update(`${file}\0${content.length}\0`);
    hash.update(content);
  }
  return { hash: hash.digest('hex'), files };
}
