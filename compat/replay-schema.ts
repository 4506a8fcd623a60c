/**
 * The schema half of a replay: the stable and the candidate version's tool lists (as their replay
 * instances list them) diffed, each change weighted by the captured `tools/call`s of the replay's
 * window and filters. A call a pinned client made goes through the candidate's transform chain
 * first, as the gateway would send it; any other call reaches the candidate as it was sent.
 */
import { capturedMessage } from '../core/documents.ts';
import { compareVersions } from '../core/semver.ts';
import { forwardRequest } from './chain.ts';
import type { PinChains } from './pin-chains.ts';
import type { SelectableDoc } from './replay-select.ts';
import type { ReplaySelection } from './replay-types.ts';
import { diffTools, type CapturedCall } from './schema-diff.ts';
import type { SchemaDiffReport, ToolDefinition } from './types.ts';

export interface ReplaySchemaInput {
  service: string;
  baseline: string;
  candidate: string;
  before: readonly ToolDefinition[];
  after: readonly ToolDefinition[];
  docs: readonly SelectableDoc[];
  selection: Pick<ReplaySelection, 'tools' | 'clients'>;
  /** The chains to the candidate (for pinned clients' calls). */
  chains: PinChains;
}

type Call = CapturedCall & { moved?: CapturedCall };

export function replaySchemaDiff(input: ReplaySchemaInput): SchemaDiffReport {
  const tools = input.selection.tools?.length ? new Set(input.selection.tools) : undefined;
  const clients = input.selection.clients?.length ? new Set(input.selection.clients) : undefined;
  const calls: Call[] = [];
  for (const doc of input.docs) {
    if (doc.truncated || doc.direction !== 'client_to_server' || doc.kind !== 'request' || doc.method !== 'tools/call' || !doc.toolName) continue;
    if (tools && !tools.has(doc.toolName)) continue;
    if (clients && !clients.has(doc.clientName ?? '') && !clients.has(doc.clientKey ?? '')) continue;
    let message;
    try {
      message = capturedMessage(doc);
    } catch {
      continue;
    }
    const params = message.params as { name?: unknown; arguments?: unknown } | undefined;
    const call: Call = { tool: doc.toolName, arguments: params?.arguments ?? {} };
    // A pin the candidate cannot serve leaves the call as sent (validation refuses gaps).
    const route = doc.versionAsked && compareVersions(doc.versionAsked, input.candidate) < 0 ? input.chains.route(doc.versionAsked) : undefined;
    const chain = route && 'chain' in route ? route.chain : undefined;
    if (chain) {
      try {
        const moved = forwardRequest(chain, message).message.params as { name?: unknown; arguments?: unknown } | undefined;
        if (typeof moved?.name === 'string') call.moved = { tool: moved.name, arguments: moved.arguments ?? {} };
      } catch {
        // A transform that throws fails the call at the gateway too: counted against the unmigrated call.
      }
    }
    calls.push(call);
  }
  return diffTools(input.service, input.baseline, input.candidate, input.before, input.after, calls, (c) => (c as Call).moved ?? c);
}
