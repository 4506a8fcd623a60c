/**
 * The side-effect policy: replay sends captured calls to real instances, so only calls that are
 * safe to repeat go by default. A tool is replayed when every listing that has it (stable's and the
 * candidate's `tools/list`) marks it `readOnlyHint`, or `idempotentHint` without `destructiveHint`;
 * a destructive or unannotated tool only when the manifest names it (rollout.replayGate.allowTools).
 * A tool that only one version lists is judged by that listing.
 */
import type { ToolPolicy } from './replay-types.ts';
import type { ToolDefinition } from './types.ts';

function judge(tool: ToolDefinition): ToolPolicy {
  const a = tool.annotations ?? {};
  if (a.readOnlyHint === true) return { replay: true, reason: 'readOnlyHint' };
  if (a.destructiveHint === true) return { replay: false, reason: 'destructiveHint' };
  if (a.idempotentHint === true) return { replay: true, reason: 'idempotentHint' };
  return { replay: false, reason: 'no readOnlyHint or idempotentHint annotation' };
}

export function toolPolicy(listings: readonly ToolDefinition[][], allowTools: readonly string[]): (tool: string) => ToolPolicy {
  const allowed = new Set(allowTools);
  return (name) => {
    if (allowed.has(name)) return { replay: true, reason: 'allowed by the manifest (rollout.replayGate.allowTools)' };
    const defs = listings.flatMap((tools) => tools.filter((t) => t.name === name));
    // A call of a tool no version lists still goes: both answer with an error, which is what is compared.
    if (!defs.length) return { replay: true, reason: 'not listed by either version' };
    const refused = defs.map(judge).find((p) => !p.replay);
    return refused ? { replay: false, reason: `${refused.reason} (allow it with rollout.replayGate.allowTools)` } : judge(defs[0]!);
  };
}
