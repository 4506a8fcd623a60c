/**
 * The replay gate's decision from a replay's counts and its schema diff (manifest
 * rollout.replayGate): captured calls the candidate's input schemas would reject count as breaking,
 * even those of tools the side-effect policy kept from being replayed.
 */
import type { GateThresholds, GateVerdict, OutcomeCounts } from './replay-types.ts';
import type { SchemaDiffReport } from './types.ts';

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

function schemaReason(schema: SchemaDiffReport | undefined, thresholds: GateThresholds): string | undefined {
  if (!schema || schema.rejectedCalls === 0 || schema.capturedCalls === 0) return undefined;
  const share = schema.rejectedCalls / schema.capturedCalls;
  if (share <= thresholds.maxBreakingShare) return undefined;
  const used = schema.changes.filter((c) => c.class === 'breaking' && c.usage.rejected > 0).map((c) => `${c.tool}: ${c.detail} (${c.usage.rejected} of ${c.usage.calls} calls)`);
  return `schema: ${schema.rejectedCalls} of ${schema.capturedCalls} captured calls would be rejected by ${schema.to} (${pct(share)} > max ${pct(thresholds.maxBreakingShare)})${used.length ? `: ${used.join('; ')}` : ''}`;
}

export function gateVerdict(counts: OutcomeCounts, thresholds: GateThresholds, schema?: SchemaDiffReport): GateVerdict {
  const reasons: string[] = [];
  const rejected = schemaReason(schema, thresholds);
  if (rejected) reasons.push(rejected);
  const compared = counts.replayed - counts.skipped;
  if (compared === 0) {
    if (reasons.length) return { decision: 'blocked', reasons };
    const why = counts.skipped ? `all ${counts.skipped} captured requests were skipped (side-effect policy)` : 'no captured traffic of the stable version to replay';
    return { decision: 'unproven', reasons: [why] };
  }
  const breaking = counts.breaks / compared;
  const differing = counts.differs / compared;
  if (breaking > thresholds.maxBreakingShare) reasons.push(`${counts.breaks} of ${compared} replayed requests break (${pct(breaking)} > max ${pct(thresholds.maxBreakingShare)})`);
  if (differing > thresholds.maxDifferingShare) reasons.push(`${counts.differs} of ${compared} replayed requests differ beyond noise (${pct(differing)} > max ${pct(thresholds.maxDifferingShare)})`);
  if (reasons.length) return { decision: 'blocked', reasons };
  if (compared < thresholds.minMessages) return { decision: 'unproven', reasons: [`only ${compared} requests replayed, fewer than the ${thresholds.minMessages} needed to prove the version`] };
  return { decision: 'proven', reasons: [`${compared} requests replayed: ${counts.breaks} break, ${counts.differs} differ, ${counts.noise} noise only, ${counts.equal} equal`] };
}
