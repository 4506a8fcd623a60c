import { cp, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from './config.ts';
import type { VersionDoc, VersionState } from './documents.ts';
import type { EventStore } from './events.ts';
import type { Store } from './mongo.ts';
import { pathExists } from './path-exists.ts';
import { setTreeWritable } from './read-only.ts';
import { assertTransition, statesLeadingTo } from './version-state.ts';

export class NotFoundError extends Error {
  override name = 'NotFoundError';
}

/** Copies a tree into an immutable folder: metadata.json beside the files, everything read-only. */
export async function writeImmutable(from: string, to: string, metadata: unknown): Promise<void> {
  if (await pathExists(to)) {
    // A previous attempt got part of the way; that copy starts again.
    await setTreeWritable(to, true);
    await rm(to, { recursive: true, force: true });
  }
  await mkdir(path.dirname(to), { recursive: true });
  await cp(from, to, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
  await writeFile(path.join(to, 'metadata.json'), JSON.stringify(metadata, null, 2));
  await setTreeWritable(to, false);
}

/** Versions and their state machine, as MongoDB and the state dir hold them. */
export class VersionRepo {
  constructor(
    private readonly config: Config,
    private readonly store: Store,
    private readonly events: EventStore,
  ) {}

  async get(service: string, version: string): Promise<VersionDoc> {
    const doc = await this.store.versions.findOne({ service, version }, { projection: { _id: 0 } });
    if (!doc) throw new NotFoundError(`no version ${version} of service ${service}`);
    return doc;
  }

  list(service: string, state?: VersionState): Promise<VersionDoc[]> {
    return this.store.versions
      .find({ service, ...(state ? { state } : {}) }, { projection: { _id: 0 } })
      .sort({ createdAt: -1 })
      .toArray();
  }

  /** Moves a version to a new state if the state machine allows it; repeating the same move is a no-op. */
  async transition(service: string, version: string, to: VersionState, reason?: string): Promise<VersionDoc> {
    const current = await this.get(service, version);
    if (current.state === to) return current;
    assertTransition(current.state, to, `${service}@${version}`);
    const at = new Date();
    const updated = await this.store.versions.findOneAndUpdate(
      { service, version, state: { $in: statesLeadingTo(to) } },
      { $set: { state: to, updatedAt: at }, $push: { history: { state: to, at, ...(reason ? { reason } : {}) } } },
      // FerretDB does not take a projection on findAndModify, so _id is dropped here.
      { returnDocument: 'after' },
    );
    if (!updated) throw new Error(`${service}@${version} changed state while moving to ${to}`);
    const { _id, ...doc } = updated;
    const failed = to === 'ROLLED_BACK' || to === 'ABORTED';
    await this.events.append({ service, version, kind: to, status: failed ? 'failed' : 'ok', details: { from: current.state, ...(reason ? { reason } : {}) } });
    return doc;
  }

  /** Archives a version: files copied to <state>/archive/<name>/<version>/, read-only, state ARCHIVED. */
  async archive(service: string, version: string, reason?: string): Promise<VersionDoc> {
    const doc = await this.get(service, version);
    if (doc.state === 'ARCHIVED') return doc;
    assertTransition(doc.state, 'ARCHIVED', `${service}@${version}`);
    if (!doc.stagedDir) throw new NotFoundError(`${service}@${version} has no staged files`);
    const archiveDir = path.join(this.config.stateDir, 'archive', service, version);
    if (doc.archiveDir !== archiveDir || !(await pathExists(archiveDir))) {
      await writeImmutable(doc.stagedDir, archiveDir, { ...doc, archivedAt: new Date(), ...(reason ? { archiveReason: reason } : {}) });
      await this.store.versions.updateOne({ service, version }, { $set: { archiveDir } });
    }
    return this.transition(service, version, 'ARCHIVED', reason);
  }

  /**
   * Brings an archived version back to STAGED, its staged files restored from the archive when they
   * are gone, so that it can be deployed like any new version.
   */
  async restore(service: string, version: string): Promise<VersionDoc> {
    const doc = await this.get(service, version);
    assertTransition(doc.state, 'STAGED', `${service}@${version}`);
    if (!doc.archiveDir || !(await pathExists(doc.archiveDir))) throw new NotFoundError(`${service}@${version} has no archived files`);
    const stagedDir = doc.stagedDir ?? path.join(this.config.stateDir, 'staged', service, version);
    if (!(await pathExists(stagedDir))) await writeImmutable(doc.archiveDir, stagedDir, { ...doc, restoredAt: new Date() });
    await this.store.versions.updateOne({ service, version }, { $set: { stagedDir } });
    return this.transition(service, version, 'STAGED', 'restored from the archive');
  }
}
