import { randomUUID } from 'node:crypto';
import { cp, mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import type { Config } from '../core/config.ts';
import { diskFullRetryable } from '../core/disk-full.ts';
import { pathExists } from '../core/path-exists.ts';
import { loadManifest, ManifestError, STEP_NAMES } from '../core/manifest.ts';
import type { SnapshotResult, StepPlan } from '../core/pipeline.ts';
import { isServiceName } from '../core/service-name.ts';
import { hashTree, listSourceFiles } from '../core/tree-hash.ts';
import { moduleCacheDir, restoreModules } from './module-cache.ts';

/** Failure types the workflow treats as a failed validation rather than a broken worker. */
export const SNAPSHOT_FAILURES = ['ManifestError', 'ServiceMissing'] as const;

const INSTALL_TIMEOUT_SEC = 600;

export function snapshotActivities(config: Config) {
  return {
    /**
     * Copies the service's source into <state>/work/<name>/<hash>/, where validation runs, so that
     * files still being edited are never validated. Keyed by the hash of what was copied.
     */
    async snapshotService(service: string): Promise<SnapshotResult> {
      if (!isServiceName(service)) throw ApplicationFailure.nonRetryable(`invalid service name ${JSON.stringify(service)}`, 'ServiceMissing');
      const source = path.join(config.servicesDir, service);
      if (!(await pathExists(source))) throw ApplicationFailure.nonRetryable(`service folder ${source} does not exist`, 'ServiceMissing');

      const workRoot = path.join(config.stateDir, 'work', service);
      // The copy, and the dependencies restored into it, are what fill the state disk.
      return diskFullRetryable(`copying ${source} into ${workRoot}`, async () => {
        const tmp = path.join(workRoot, `.tmp-${randomUUID()}`);
        await mkdir(tmp, { recursive: true });
        try {
          for (const file of await listSourceFiles(source)) {
            await cp(path.join(source, file), path.join(tmp, file), { recursive: false, preserveTimestamps: true });
          }
          const { hash, files } = await hashTree(tmp);
          const dir = path.join(workRoot, hash);
          if (await pathExists(dir)) await rm(tmp, { recursive: true, force: true });
          else await rename(tmp, dir);

          let manifest;
          try {
            manifest = await loadManifest(dir);
          } catch (err) {
            if (err instanceof ManifestError) throw ApplicationFailure.nonRetryable(err.message.replaceAll(dir, source), 'ManifestError');
            throw err;
          }
          if (manifest.name !== service) {
            throw ApplicationFailure.nonRetryable(`${source}/mcp.json: name: "${manifest.name}" does not match the folder name "${service}"`, 'ManifestError');
          }

          const steps: StepPlan[] = [];
          if (manifest.install) {
            // Whatever an earlier, possibly cancelled, validation of this content left is not trusted:
            // the dependencies come whole from the cache, or from a fresh install (which fills it).
            await rm(path.join(dir, 'node_modules'), { recursive: true, force: true });
            const cacheDir = await moduleCacheDir(config.stateDir, dir);
            const restored = cacheDir !== undefined && (await restoreModules(cacheDir, dir));
            if (!restored) steps.push({ step: 'install', command: manifest.install, timeoutSec: INSTALL_TIMEOUT_SEC });
          }
          for (const step of STEP_NAMES) steps.push({ step, command: manifest.steps[step].run, timeoutSec: manifest.steps[step].timeoutSec });
          return { service, hash, dir, files, version: manifest.version, steps, autoDeploy: manifest.rollout.autoDeploy };
        } finally {
          await rm(tmp, { recursive: true, force: true });
        }
      });
    },
  };
}
