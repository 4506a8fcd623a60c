import path from 'node:path';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { execa } from 'execa';
import type { Config } from '../core/config.ts';
import { diskFullRetryable } from '../core/disk-full.ts';
import type { VersionDoc, VersionState } from '../core/documents.ts';
import type { EventStore } from '../core/events.ts';
import type { Store } from '../core/mongo.ts';
import type { StageInput, StageResult } from '../core/pipeline.ts';
import { nextVersion } from '../core/semver.ts';
import { NotFoundError, VersionRepo, writeImmutable } from '../core/version-repo.ts';
import { IllegalTransitionError } from '../core/version-state.ts';

let toolVersions: Promise<Record<string, string>> | undefined;
function tools(): Promise<Record<string, string>> {
  toolVersions ??= execa('npm', ['--version'], { reject: false }).then((npm) => ({ node: process.version, npm: npm.stdout.trim() || 'unknown' }));
  return toolVersions;
}

export function versionActivities(deps: { config: Config; store: Store; events: EventStore }) {
  const { config, store, events } = deps;

  const repo = new VersionRepo(config, store, events);

  /** Domain errors become non-retryable failures: retrying an illegal move cannot make it legal. */
  async function domain<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      if (err instanceof IllegalTransitionError) throw ApplicationFailure.nonRetryable(err.message, 'IllegalTransition');
      if (err instanceof NotFoundError) throw ApplicationFailure.nonRetryable(err.message, 'NotFound');
      throw err;
    }
  }

  return {
    transitionVersion(service: string, version: string, to: VersionState, reason?: string): Promise<VersionDoc> {
      return domain(() => repo.transition(service, version, to, reason));
    },

    /**
     * Stages a validated snapshot as an immutable version. The same content (hash) is never staged
     * twice: a repeat returns the version that already holds it (`existing`). A retry of this same
     * activity is no repeat: an attempt that stored the version but failed before (or while)
     * writing its STAGED event must still come back as new, or the workflow skips auto-deploy.
     * The STAGED event is the commit mark, and it names the activity that wrote it.
     */
    async stageVersion(input: StageInput): Promise<StageResult> {
      const { service, hash } = input;
      const { workflowExecution: run, activityId } = Context.current().info;
      const stagedBy = `${run?.workflowId}/${run?.runId}/${activityId}`;
      const announce = (version: string, stagedDir: string) =>
        events.append({ service, version, kind: 'STAGED', status: 'ok', details: { hash, stagedDir, changedPaths: input.changedPaths, manifestVersion: input.manifestVersion, stagedBy } });

      const already = await store.versions.findOne({ service, hash });
      if (already?.stagedDir) {
        const mark = await store.events.findOne({ service, version: already.version, kind: 'STAGED' });
        if (mark && (mark.details as { stagedBy?: unknown } | undefined)?.stagedBy !== stagedBy) return { version: already.version, stagedDir: already.stagedDir, existing: true };
        // Staged but never announced (an earlier attempt failed on the way), or announced by this very activity.
        if (!mark) await announce(already.version, already.stagedDir);
        return { version: already.version, stagedDir: already.stagedDir, existing: false };
      }

      const staged = (await store.versions.find({ service }, { projection: { version: 1 } }).toArray()).map((v) => v.version);
      const version = nextVersion(input.manifestVersion, staged);
      const stagedDir = path.join(config.stateDir, 'staged', service, version);
      const now = new Date();
      const doc: VersionDoc = {
        service,
        version,
        state: 'STAGED',
        hash,
        files: input.files,
        stagedDir,
        steps: input.steps,
        tools: await tools(),
        createdAt: now,
        updatedAt: now,
        history: [{ state: 'VALIDATING', at: now }, { state: 'STAGED', at: now }],
      };
      await diskFullRetryable(`copying ${input.dir} into ${stagedDir}`, () => writeImmutable(input.dir, stagedDir, { ...doc, changedPaths: input.changedPaths, manifestVersion: input.manifestVersion }));
      await store.versions.updateOne({ service, version }, { $setOnInsert: doc }, { upsert: true });
      await announce(version, stagedDir);
      return { version, stagedDir, existing: false };
    },

    archiveVersion(service: string, version: string, reason?: string): Promise<VersionDoc> {
      return domain(() => repo.archive(service, version, reason));
    },
  };
}
