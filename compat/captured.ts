/**
 * The round-trip test over captured traffic: which chain each captured message goes through, for
 * a target version whose transforms are given. A client's request was written in the shapes of the
 * version it asked for (versionAsked, else the one that served it); a server's message in those of
 * the version that served it. Messages of the target's own shapes have nothing to prove and are
 * left out; so are messages stored cut (their text is not whole).
 */
import { capturedMessage, type MessageDoc } from '../core/documents.ts';
import { compareVersions } from '../core/semver.ts';
import { buildChain, forwardRequest } from './chain.ts';
import { roundTrip, roundTripReport, type RoundTripInput } from './round-trip.ts';
import type { JsonRpcMessage, LoadedTransform, RoundTripReport, RoundTripResult, ToolDefinition, TransformChain } from './types.ts';

export type CapturedDoc = Pick<MessageDoc, 'messageId' | 'raw' | 'truncated' | 'version' | 'versionAsked' | 'direction' | 'kind' | 'rpcId' | 'sessionId' | 'clientKey'>;

const exchangeKey = (d: CapturedDoc) => `${d.sessionId ?? d.clientKey ?? ''}\n${typeof d.rpcId === 'string' ? 's' : 'n'}${String(d.rpcId)}`;

/** Round trips of the captured messages through the chains that lead to `target`: one report per starting version, and every result. */
export function roundTripCaptured(service: string, transforms: readonly LoadedTransform[], target: string, docs: readonly CapturedDoc[]): { reports: RoundTripReport[]; results: RoundTripResult[] } {
  const chains = new Map<string, TransformChain>();
  const chain = (from: string) => {
    let c = chains.get(from);
    if (!c) chains.set(from, (c = buildChain(service, transforms, from, target)));
    return c;
  };
  const requests = new Map<string, { doc: CapturedDoc; message: JsonRpcMessage }>();
  const results = new Map<string, RoundTripResult[]>();
  const add = (from: string, input: RoundTripInput) => {
    const list = results.get(from) ?? [];
    list.push(roundTrip(chain(from), input));
    results.set(from, list);
  };
  for (const doc of docs) {
    if (doc.truncated) continue;
    const message = capturedMessage(doc);
    const asked = doc.versionAsked ?? doc.version;
    if (doc.direction === 'client_to_server') {
      if (doc.kind !== 'request') continue;
      requests.set(exchangeKey(doc), { doc, message });
      if (compareVersions(asked, target) < 0) add(asked, { messageId: doc.messageId, direction: doc.direction, kind: 'request', message });
      continue;
    }
    if (doc.kind === 'request') continue;
    const served = doc.version;
    const req = doc.kind === 'notification' ? undefined : requests.get(exchangeKey(doc));
    const base = { messageId: doc.messageId, direction: doc.direction, kind: doc.kind, message } as const;
    const reqAsked = req ? (req.doc.versionAsked ?? req.doc.version) : served;
    if (compareVersions(served, target) < 0) {
      // Captured from an older version: its request, in that version's shapes, gives the context.
      const request = req ? (compareVersions(reqAsked, served) < 0 ? forwardRequest(buildChain(service, transforms, reqAsked, served), req.message).message : req.message) : undefined;
      add(served, { ...base, ...(request ? { request } : {}), at: 'from' });
    } else if (compareVersions(served, target) === 0 && compareVersions(reqAsked, target) < 0) {
      // Served through a pin: in the target's shapes, answering a client of reqAsked.
      add(reqAsked, { ...base, ...(req ? { request: req.message } : {}), at: 'to' });
    }
  }
  return {
    reports: [...results.entries()].sort(([a], [b]) => compareVersions(a, b)).map(([from, list]) => roundTripReport(chain(from), list)),
    results: [...results.values()].flat(),
  };
}

/** The captured `tools/call`s of client_to_server requests, with their arguments, as the clients sent them. */
export function capturedCalls(docs: readonly CapturedDoc[]): { tool: string; arguments: unknown; versionAsked: string }[] {
  const out: { tool: string; arguments: unknown; versionAsked: string }[] = [];
  for (const d of docs) {
    if (d.truncated || d.direction !== 'client_to_server' || d.kind !== 'request') continue;
    const msg = capturedMessage(d);
    const params = msg.params as { name?: unknown; arguments?: unknown } | undefined;
    if (msg.method === 'tools/call' && typeof params?.name === 'string') out.push({ tool: params.name, arguments: params.arguments ?? {}, versionAsked: d.versionAsked ?? d.version });
  }
  return out;
}

/** The tools of the newest captured `tools/list` answer of a version, as that version sent them. */
export function capturedTools(docs: readonly CapturedDoc[], version: string): ToolDefinition[] | undefined {
  const listIds = new Set(docs.filter((d) => d.direction === 'client_to_server' && d.kind === 'request' && !d.truncated && capturedMessage(d).method === 'tools/list').map(exchangeKey));
  for (let i = docs.length - 1; i >= 0; i--) {
    const d = docs[i]!;
    if (d.version !== version || d.direction !== 'server_to_client' || d.kind !== 'response' || d.truncated || !listIds.has(exchangeKey(d))) continue;
    const tools = (capturedMessage(d).result as { tools?: unknown } | undefined)?.tools;
    if (Array.isArray(tools)) return tools as ToolDefinition[];
  }
  return undefined;
}
