/**
 * The transforms step of validation (issue 9): a version's `transforms/*.ts` must load, form a
 * chain without gaps or overlaps up to the version, and run on the service's captured traffic
 * without throwing. The round trip of that traffic is recorded in the compatibility matrix; a
 * lossy round trip is reported there, not refused (a dropped field may be the intended change).
 */
import { chainProblems } from '../compat/chain.ts';
import { roundTripCaptured } from '../compat/captured.ts';
import { loadTransforms, TransformLoadError } from '../compat/load.ts';
import { roundTripCells, writeCells } from '../compat/matrix.ts';
import type { RoundTripReport } from '../compat/types.ts';
import type { Store } from '../core/mongo.ts';

/** Captured messages the round trip is run over: the newest ones. */
export const ROUND_TRIP_SAMPLE = 2_000;

export interface TransformCheckInput {
  service: string;
  /** The snapshot folder being validated. */
  dir: string;
  /** The manifest's version: the chains end there. */
  version: string;
}

export type TransformCheck =
  | { ok: true; transforms: string[]; reports: Omit<RoundTripReport, 'samples'>[] }
  | { ok: false; reason: string };

export function transformActivities(deps: { store: Store }) {
  return {
    async checkTransforms(input: TransformCheckInput): Promise<TransformCheck> {
      const { service, dir, version } = input;
      let transforms;
      try {
        transforms = await loadTransforms(dir);
      } catch (err) {
        if (err instanceof TransformLoadError) return { ok: false, reason: `transforms: ${err.message}` };
        throw err;
      }
      if (transforms.length === 0) return { ok: true, transforms: [], reports: [] };
      const problems = chainProblems(transforms, version);
      if (problems.length > 0) return { ok: false, reason: `transforms: ${problems.join('; ')}` };
      const docs = (
        await deps.store.messages
          .find({ service, truncated: false }, { projection: { _id: 0, messageId: 1, raw: 1, truncated: 1, version: 1, versionAsked: 1, direction: 1, kind: 1, rpcId: 1, sessionId: 1, clientKey: 1, protocolRevision: 1, clientName: 1, clientVersion: 1, at: 1 } })
          .sort({ at: -1 })
          .limit(ROUND_TRIP_SAMPLE)
          .toArray()
      ).reverse();
      let round;
      try {
        round = roundTripCaptured(service, transforms, version, docs);
      } catch (err) {
        // A captured client older than the oldest transform: the chain cannot serve it.
        return { ok: false, reason: `transforms: ${(err as Error).message}` };
      }
      const failed = round.results.find((r) => r.outcome === 'failed');
      if (failed?.failure) {
        const { transformId, phase, message } = failed.failure;
        return { ok: false, reason: `transforms: ${transformId} throws in ${phase} on captured message ${failed.messageId} (${failed.method ?? failed.kind}${failed.toolName ? ` ${failed.toolName}` : ''}): ${message}` };
      }
      const byId = new Map(docs.map((d) => [d.messageId, d]));
      await writeCells(deps.store, service, version, 'round_trip', roundTripCells(round.results, byId, `validation:${version}`));
      return { ok: true, transforms: transforms.map((t) => t.id), reports: round.reports.map(({ samples: _s, ...r }) => r) };
    },
  };
}
