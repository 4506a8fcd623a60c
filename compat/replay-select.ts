/**
 * From captured messages to a replay plan. A session revision's session is replayed whole (its
 * `initialize` first, its requests in order), because a request may depend on what the session did
 * before; a stateless (2026-07-28) request stands alone, with the retries of its multi-round
 * (`inputResponses`) call. The sample is drawn by whole units, in a seeded order, so that a resumed
 * run draws exactly the same plan.
 */
import { capturedMessage, type MessageDoc } from '../core/documents.ts';
import type { ReplaySelection } from './replay-types.ts';

/** Requests whose answers are compared; the others (initialize, lists, pings) only set a session up. */
export const COMPARED_METHODS: ReadonlySet<string> = new Set(['tools/call', 'resources/read', 'prompts/get', 'completion/complete']);

/** Client notifications that refer to the captured run's ids and so must not be sent again. */
const UNSENT_NOTIFICATIONS: ReadonlySet<string> = new Set(['notifications/cancelled', 'notifications/progress']);

export type SelectableDoc = Pick<
  MessageDoc,
  'messageId' | 'raw' | 'truncated' | 'direction' | 'kind' | 'method' | 'rpcId' | 'toolName' | 'sessionId' | 'clientKey' | 'protocolRevision' | 'clientName' | 'clientVersion' | 'at'
> &
  Partial<Pick<MessageDoc, 'versionAsked'>>;

export interface ReplayStep {
  messageId: string;
  method: string;
  tool?: string;
  /** The request or notification as captured (parsed from its exact text); absent when it could not be read back. */
  message?: Record<string, unknown>;
  unreadable?: string;
  /** The captured answer (the stable version's response or error). */
  answer?: Record<string, unknown>;
  /** Counts in the sample: a compared method that passes the filters. */
  compared: boolean;
  protocolRevision?: string;
  clientName?: string;
  clientVersion?: string;
  /** The version a pinned client asked for: its request is in that version's shapes. */
  versionAsked?: string;
}

export interface ReplayUnit {
  key: string;
  /** A session revision's session (initialize first, Mcp-Session-Id from the instance). */
  stateful: boolean;
  protocolRevision?: string;
  steps: ReplayStep[];
  /** The client's captured answers to server→client requests (sampling, elicitation), by method, in order. */
  clientAnswers: Record<string, Record<string, unknown>[]>;
}

export interface ReplayPlan {
  units: ReplayUnit[];
  /** Compared requests in the plan. */
  total: number;
}

function read(doc: SelectableDoc): { message?: Record<string, unknown>; unreadable?: string } {
  try {
    return { message: capturedMessage(doc) };
  } catch (err) {
    return { unreadable: (err as Error).message };
  }
}

const idKey = (id: unknown) => JSON.stringify(id ?? null);
/** A request and its answer share the session (or, stateless, the client key) and the rpc id. */
const pendingKey = (doc: SelectableDoc) => (doc.sessionId ? `s:${doc.sessionId}` : `c:${doc.clientKey ?? ''}`) + `|${idKey(doc.rpcId)}`;

/** FNV-1a: a stable, seeded order for sampling (the same plan on every attempt). */
function rank(seed: string, key: string): number {
  let h = 0x811c9dc5;
  for (const ch of `${seed}:${key}`) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * Builds the plan from a service's captured messages (oldest first). `seed` fixes the sample.
 * Sessions whose `initialize` is not in `docs` are left out: they cannot be set up again.
 */
export function planReplay(docs: readonly SelectableDoc[], selection: ReplaySelection, seed: string): ReplayPlan {
  const tools = selection.tools?.length ? new Set(selection.tools) : undefined;
  const clients = selection.clients?.length ? new Set(selection.clients) : undefined;
  const units = new Map<string, ReplayUnit>();
  /** Where the answer to a request goes: unit key + rpc id → step. */
  const pending = new Map<string, ReplayStep>();
  /** Server→client requests by unit key + rpc id → method, so the client's answer is filed under it. */
  const serverRequests = new Map<string, string>();
  /** Stateless: the last unit of each client key, for multi-round retries. */
  const lastOfClient = new Map<string, ReplayUnit>();
  let statelessSeq = 0;

  for (const doc of docs) {
    const stateful = Boolean(doc.sessionId);
    if (doc.direction === 'client_to_server' && doc.kind !== 'response' && doc.kind !== 'error') {
      if (!doc.method || (doc.kind === 'notification' && UNSENT_NOTIFICATIONS.has(doc.method))) continue;
      if (clients && !clients.has(doc.clientName ?? '') && !clients.has(doc.clientKey ?? '')) continue;
      const { message, unreadable } = read(doc);
      const step: ReplayStep = {
        messageId: doc.messageId,
        method: doc.method,
        ...(doc.toolName ? { tool: doc.toolName } : {}),
        ...(message ? { message } : { unreadable: unreadable! }),
        compared: COMPARED_METHODS.has(doc.method) && (!tools || (doc.method === 'tools/call' && tools.has(doc.toolName ?? ''))),
        ...(doc.protocolRevision ? { protocolRevision: doc.protocolRevision } : {}),
        ...(doc.clientName ? { clientName: doc.clientName } : {}),
        ...(doc.clientVersion ? { clientVersion: doc.clientVersion } : {}),
        ...(doc.versionAsked ? { versionAsked: doc.versionAsked } : {}),
      };
      let unit: ReplayUnit | undefined;
      if (stateful) {
        unit = units.get(`s:${doc.sessionId}`);
        if (!unit) {
          if (doc.method !== 'initialize') continue; // the session began before the capture window
          unit = { key: `s:${doc.sessionId}`, stateful: true, steps: [], clientAnswers: {}, ...(doc.protocolRevision ? { protocolRevision: doc.protocolRevision } : {}) };
          units.set(unit.key, unit);
        }
      } else {
        const params = (message?.params ?? {}) as Record<string, unknown>;
        const retry = 'inputResponses' in params && doc.clientKey ? lastOfClient.get(doc.clientKey) : undefined;
        unit = retry ?? { key: `r:${statelessSeq++}:${doc.messageId}`, stateful: false, steps: [], clientAnswers: {}, ...(doc.protocolRevision ? { protocolRevision: doc.protocolRevision } : {}) };
        if (!retry) units.set(unit.key, unit);
        if (doc.clientKey) lastOfClient.set(doc.clientKey, unit);
      }
      unit.steps.push(step);
      if (doc.kind === 'request') pending.set(pendingKey(doc), step);
      continue;
    }
    const unitKey = stateful ? `s:${doc.sessionId}` : undefined;
    if (doc.direction === 'server_to_client' && (doc.kind === 'response' || doc.kind === 'error')) {
      const key = pendingKey(doc);
      const step = pending.get(key);
      if (!step) continue;
      pending.delete(key);
      const { message } = read(doc);
      if (message) step.answer = message;
      continue;
    }
    if (!unitKey || !units.has(unitKey)) continue;
    if (doc.direction === 'server_to_client' && doc.kind === 'request' && doc.method) {
      serverRequests.set(`${unitKey}|${idKey(doc.rpcId)}`, doc.method);
    } else if (doc.direction === 'client_to_server' && doc.kind === 'response') {
      const method = serverRequests.get(`${unitKey}|${idKey(doc.rpcId)}`);
      const { message } = read(doc);
      if (method && message) (units.get(unitKey)!.clientAnswers[method] ??= []).push(message);
    }
  }

  // A compared request without its captured answer cannot be judged against stable's old answer
  // alone, but it is still compared candidate vs stable now; nothing to drop here.
  const all = [...units.values()].filter((u) => u.steps.some((s) => s.compared));
  const compared = (u: ReplayUnit) => u.steps.filter((s) => s.compared).length;
  const limit = selection.sampleSize ?? Number.POSITIVE_INFINITY;
  const picked = new Set<ReplayUnit>();
  let total = 0;
  for (const unit of [...all].sort((a, b) => rank(seed, a.key) - rank(seed, b.key))) {
    if (total >= limit) break;
    picked.add(unit);
    total += compared(unit);
  }
  return { units: all.filter((u) => picked.has(u)), total };
}
