/**
 * The round-trip test of a transform chain over captured messages: a message goes through the
 * chain and back, and must come back as it was. Requests run requestForward (what the gateway runs)
 * then requestInverse; responses and notifications run responseBackward / notificationBackward
 * (what the gateway runs) and their inverse, in the order their captured shape asks for.
 * Anything else is a loss, classified with its JSON-pointer path.
 */
import { backwardNotification, backwardResponse, cloneJson, forwardRequest, requestFacts, TransformError, type AnsweredRequest } from './chain.ts';
import { differences } from './diff.ts';
import type { Difference, JsonRpcMessage, PathCount, RoundTripReport, RoundTripResult, TransformChain, TransformContext } from './types.ts';

/**
 * One captured message, parsed, with the request it answers (for a response, in chain.from's
 * shapes: what the client sent). A client's message is in chain.from's shapes; a server's message
 * is in chain.to's (`at: 'to'`: it was captured from the version serving through the chain, so it
 * goes down the chain first) or in chain.from's (captured from an older version, so it goes up first).
 */
export interface RoundTripInput {
  messageId?: string;
  direction: 'client_to_server' | 'server_to_client';
  kind: RoundTripResult['kind'];
  message: JsonRpcMessage;
  request?: JsonRpcMessage;
  at?: 'from' | 'to';
}

function facts(input: RoundTripInput): Pick<RoundTripResult, 'messageId' | 'direction' | 'kind' | 'method' | 'toolName'> {
  const f = requestFacts(input.request ?? input.message);
  return {
    ...(input.messageId !== undefined ? { messageId: input.messageId } : {}),
    direction: input.direction,
    kind: input.kind,
    ...(f.method !== undefined ? { method: f.method } : {}),
    ...(f.toolName !== undefined ? { toolName: f.toolName } : {}),
  };
}

function up(chain: TransformChain, input: RoundTripInput, request: AnsweredRequest): JsonRpcMessage | 'unchecked' {
  let msg = cloneJson(input.message);
  const response = input.kind === 'response' || input.kind === 'error';
  for (let i = 0; i < chain.steps.length; i++) {
    const step = chain.steps[i]!;
    const ctx: TransformContext = { service: chain.service, from: step.from, to: step.to, ...(response ? (request.trail?.[i] ?? {}) : requestFacts(msg)) };
    if (response) {
      if (request.trail?.[i]?.method === 'tools/list' && step.toolsListBackward) return 'unchecked';
      if (!step.responseBackward) continue;
      if (!step.responseInverse) return 'unchecked';
      msg = guard(step.id, 'responseInverse', () => step.responseInverse!(msg, { ...ctx, ...(request.message ? { request: request.message } : {}) }));
    } else {
      if (!step.notificationBackward) continue;
      if (!step.notificationInverse) return 'unchecked';
      msg = guard(step.id, 'notificationInverse', () => step.notificationInverse!(msg, ctx));
    }
  }
  return msg;
}

function guard(transformId: string, phase: 'requestInverse' | 'responseInverse' | 'notificationInverse', fn: () => JsonRpcMessage): JsonRpcMessage {
  let out: unknown;
  try {
    out = fn();
  } catch (err) {
    throw new TransformError({ transformId, phase, message: err instanceof Error ? err.message : String(err) });
  }
  if (out === null || typeof out !== 'object' || Array.isArray(out)) throw new TransformError({ transformId, phase, message: 'did not return a message object' });
  return out as JsonRpcMessage;
}

function roundTripOnce(chain: TransformChain, input: RoundTripInput): JsonRpcMessage | 'unchecked' {
  if (input.direction === 'client_to_server') {
    if (input.kind !== 'request') return input.message;
    let msg = forwardRequest(chain, input.message).message;
    for (let i = chain.steps.length - 1; i >= 0; i--) {
      const step = chain.steps[i]!;
      if (!step.requestForward) continue;
      if (!step.requestInverse) return 'unchecked';
      const current = msg;
      msg = guard(step.id, 'requestInverse', () => step.requestInverse!(current, { service: chain.service, from: step.from, to: step.to, ...requestFacts(current) }));
    }
    return msg;
  }
  if (input.kind === 'request') return input.message;
  const request: AnsweredRequest = input.request ? forwardRequest(chain, input.request) : {};
  const down = (msg: JsonRpcMessage) => (input.kind === 'notification' ? backwardNotification(chain, msg).message : backwardResponse(chain, msg, request).message);
  if (input.at === 'to') return up(chain, { ...input, message: down(input.message) }, request);
  const lifted = up(chain, input, request);
  return lifted === 'unchecked' ? lifted : down(lifted);
}

/** The round trip of one message: exact, lossy (with its losses), failed or unchecked. */
export function roundTrip(chain: TransformChain, input: RoundTripInput): RoundTripResult {
  const base = facts(input);
  try {
    const back = roundTripOnce(chain, input);
    if (back === 'unchecked') return { ...base, outcome: 'unchecked', losses: [] };
    const losses: Difference[] = differences(input.message, back);
    return { ...base, outcome: losses.length === 0 ? 'exact' : 'lossy', losses };
  } catch (err) {
    if (err instanceof TransformError) return { ...base, outcome: 'failed', losses: [], failure: err.failure };
    throw err;
  }
}

/** Paths counted over results, most frequent first. */
export function topPaths(results: readonly RoundTripResult[], limit = 10): PathCount[] {
  const counts = new Map<string, PathCount>();
  const add = (path: string, kind: PathCount['kind']) => {
    const key = `${kind} ${path}`;
    const entry = counts.get(key);
    if (entry) entry.count++;
    else counts.set(key, { path, kind, count: 1 });
  };
  for (const r of results) {
    if (r.failure) add(`${r.failure.transformId}#${r.failure.phase}`, 'transform_failed');
    for (const loss of r.losses) add(loss.path, loss.kind);
  }
  return [...counts.values()].sort((a, b) => b.count - a.count || a.path.localeCompare(b.path)).slice(0, limit);
}

/** The report of many round trips through one chain. */
export function roundTripReport(chain: TransformChain, results: readonly RoundTripResult[], sampleLimit = 5): RoundTripReport {
  const count = (outcome: RoundTripResult['outcome']) => results.filter((r) => r.outcome === outcome).length;
  return {
    service: chain.service,
    from: chain.from,
    to: chain.to,
    chain: chain.steps.map((s) => s.id),
    total: results.length,
    exact: count('exact'),
    lossy: count('lossy'),
    failed: count('failed'),
    unchecked: count('unchecked'),
    topPaths: topPaths(results),
    samples: results.filter((r) => r.outcome === 'failed' || r.outcome === 'lossy').slice(0, sampleLimit),
  };
}
