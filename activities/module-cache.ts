/**
 * Installed dependencies, cached per lock-file hash under <state>/cache/node_modules/<hash>/, so that
 * a save that does not change the lock file skips the install. A snapshot gets its own copy of the
 * cached tree (never a link to it): whatever a step writes stays in its snapshot, and the staged and
 * archived versions made from the snapshot own every file they run. The cache is filled in a
 * temporary folder and renamed into place, so it is either complete or absent.
 */
import { createHash, randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { cp, mkdir, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { LOCK_FILE } from '../core/manifest.ts';
import { pathExists } from '../core/path-exists.ts';

const MODULES = 'node_modules';
const TMP_PREFIX = '.tmp-';
/** A temporary fill older than this was left by a worker that died; nothing still writes it. */
const STALE_FILL_MS = 60 * 60 * 1000;
/** Copy-on-write where the file system can (btrfs, XFS), a plain copy elsewhere. */
const COPY = { recursive: true, verbatimSymlinks: true, preserveTimestamps: true, mode: constants.COPYFILE_FICLONE } as const;

/** The cache entry for a snapshot's lock file, or undefined when the service has none. */
export async function moduleCacheDir(stateDir: string, snapshotDir: string): Promise<string | undefined> {
  const lock = path.join(snapshotDir, LOCK_FILE);
  if (!(await pathExists(lock))) return undefined;
  const lockHash = createHash('sha256').update(await readFile(lock)).digest('hex').slice(0, 16);
  return path.join(stateDir, 'cache', MODULES, lockHash);
}

/** Copies the cached node_modules into the snapshot; false when there is nothing cached. */
export async function restoreModules(cacheDir: string, snapshotDir: string): Promise<boolean> {
  const cached = path.join(cacheDir, MODULES);
  if (!(await pathExists(cached))) return false;
  const target = path.join(snapshotDir, MODULES);
  await rm(target, { recursive: true, force: true });
  await cp(cached, target, COPY);
  return true;
}

/**
 * Stores the snapshot's node_modules (after a successful install) as the cache entry. Copied to a
 * temporary folder, then renamed: a cancelled or crashed fill leaves no entry at all, and a
 * concurrent fill of the same lock file simply loses the race. `cancelled` is asked before the
 * rename, so a cancelled save does not publish what it was copying.
 */
export async function fillModuleCache(cacheDir: string, snapshotDir: string, cancelled: () => boolean = () => false): Promise<'filled' | 'present' | 'cancelled'> {
  if (await pathExists(path.join(cacheDir, MODULES))) return 'present';
  const root = path.dirname(cacheDir);
  await mkdir(root, { recursive: true });
  await removeStaleFills(root);
  const tmp = path.join(root, `${TMP_PREFIX}${path.basename(cacheDir)}-${randomUUID()}`);
  try {
    const installed = path.join(snapshotDir, MODULES);
    // A lock file without packages leaves no node_modules; the cache still records that.
    if (await pathExists(installed)) await cp(installed, path.join(tmp, MODULES), COPY);
    else await mkdir(path.join(tmp, MODULES), { recursive: true });
    if (cancelled()) return 'cancelled';
    try {
      await rename(tmp, cacheDir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') return 'present';
      throw err;
    }
    return 'filled';
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

async function removeStaleFills(root: string): Promise<void> {
  for (const name of await readdir(root)) {
    if (!name.startsWith(TMP_PREFIX)) continue;
    const dir = path.join(root, name);
    const info = await stat(dir).catch(() => undefined);
    if (info && Date.now() - info.mtimeMs > STALE_FILL_MS) await rm(dir, { recursive: true, force: true });
  }
}
