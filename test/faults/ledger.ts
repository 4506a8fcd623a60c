/**
 * What a fault cost: every answered call looked up in the capture, every save followed to its
 * outcome, every deployment to its end and the state it left.
 */
import type { EventDoc, MessageDoc } from '../../core/documents.ts';
import { readRouting } from '../../core/routing-store.ts';
import { waitFor } from '../support/wait.ts';
import type { CallRecord } from './load.ts';
import { endsDeployment, GUARD_MS, SERVICE, type FaultRig } from './rig.ts';

/** A captured message as an object (its raw JSON text parsed), or undefined for a truncated one. */
function payloadObject(doc: MessageDoc): Record<string, unknown> | undefined {
  try {
    return JSON.parse(doc.raw) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** The `a` of a captured `add` request, or the value of a captured `add` result. */
function seqOf(doc: MessageDoc): number | undefined {
  const p = payloadObject(doc) as { params?: { arguments?: { a?: unknown } }; result?: { structuredContent?: { result?: unknown } } } | undefined;
  const value = doc.direction === 'client_to_server' ? p?.params?.arguments?.a : p?.result?.structuredContent?.result;
  return typeof value === 'number' ? value : undefined;
}

export interface CaptureFigures {
  /** Messages of answered calls (request and response each) found in MongoDB. */
  captured: number;
  lost: number;
  /** Of the lost: the calls' requests, and their responses. */
  lostRequests: number;
  lostResponses: number;
}

/** Waits for the capture to settle (its spill replayed), then matches the answered calls. */
export async function captureFigures(rig: FaultRig, calls: readonly CallRecord[], since: Date): Promise<CaptureFigures> {
  const ok = calls.filter((c) => c.ok);
  const expected = ok.length * 2;
  const count = async () => {
    const docs = await rig.store.messages.find({ service: SERVICE, at: { $gte: since } }).toArray();
    const requests = new Set<number>();
    const responses = new Set<number>();
    for (const doc of docs) {
      const seq = seqOf(doc);
      if (seq !== undefined) (doc.direction === 'client_to_server' ? requests : responses).add(seq);
    }
    return { requests: ok.filter((c) => requests.has(c.seq)).length, responses: ok.filter((c) => responses.has(c.seq)).length };
  };
  // Settled: everything is there, or the count has not moved for 15 s (the spill replays within that).
  let found = await count();
  let stillFor = 0;
  while (found.requests + found.responses < expected && stillFor < 15) {
    await new Promise((r) => setTimeout(r, 1000));
    const now = await count();
    stillFor = now.requests + now.responses === found.requests + found.responses ? stillFor + 1 : 0;
    found = now;
  }
  const captured = found.requests + found.responses;
  return { captured, lost: expected - captured, lostRequests: ok.length - found.requests, lostResponses: ok.length - found.responses };
}

export type SaveOutcome = { kind: 'validated'; version: string } | { kind: 'failed'; reason: string } | { kind: 'lost' };

/** The save's outcome: staged (validated), a validation failure with its reason, or nothing (lost). */
export async function saveOutcome(rig: FaultRig, from: number): Promise<SaveOutcome> {
  try {
    const e = await rig.waitForEvent('the save to be validated or refused', from, (e) => e.kind === 'STAGED' || e.kind === 'VALIDATION_FAILED');
    if (e.kind === 'STAGED') return { kind: 'validated', version: e.version! };
    return { kind: 'failed', reason: String((e.details as { reason?: unknown } | undefined)?.reason ?? '') };
  } catch {
    return { kind: 'lost' };
  }
}

export interface RolloutOutcome {
  version: string;
  end: string;
  correct: boolean;
  why: string;
}

/**
 * A deployment ended correctly when it reached an end event and left one consistent state: the
 * version it ended on is stable at weight 100 with a ready instance, nothing is left in CANARY,
 * and a promoted version is ACTIVE (a rolled-back one is not).
 */
export async function rolloutOutcome(rig: FaultRig, from: number, version: string): Promise<RolloutOutcome> {
  let end: EventDoc;
  try {
    end = await rig.waitForEvent(`the deployment of ${version} to end`, from, (e) => e.version === version && endsDeployment(e));
  } catch {
    return { version, end: 'none', correct: false, why: 'no end event' };
  }
  const promoted = end.kind === 'PROMOTED';
  const problems: string[] = [];
  const routing = await readRouting(rig.store, SERVICE);
  const stable = routing.stable;
  if (promoted && stable !== version) problems.push(`stable is ${stable}, not ${version}`);
  if (!promoted && stable === version) problems.push(`stable is still the rolled-back ${version}`);
  const live = Object.entries(routing.weights).filter(([, w]) => w > 0);
  if (live.length !== 1 || live[0]![0] !== stable) problems.push(`weights ${JSON.stringify(routing.weights)}`);
  const doc = await rig.store.versions.findOne({ service: SERVICE, version });
  if (promoted !== (doc?.state === 'ACTIVE')) problems.push(`${version} is ${doc?.state}`);
  const canaries = await rig.store.versions.countDocuments({ service: SERVICE, state: 'CANARY' });
  if (canaries > 0) problems.push(`${canaries} version(s) left in CANARY`);
  try {
    await waitFor(`a ready instance of ${stable}`, async () => (await rig.store.instances.countDocuments({ service: SERVICE, version: stable, state: 'ready' })) > 0, GUARD_MS, 500);
  } catch {
    problems.push(`no ready instance of ${stable}`);
  }
  return { version, end: end.kind, correct: problems.length === 0, why: problems.join('; ') };
}
