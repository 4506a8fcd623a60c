/** The replay gate's decision from a replay's counts (manifest rollout.replayGate). */
import type { GateThresholds, GateVerdict, OutcomeCounts } from './replay-types.ts';

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

export function gateVerdict(counts: OutcomeCounts, thresholds: GateThresholds): GateVerdict {
  const compared = counts.replayed - counts.skipped;
  if (compared === 0) {
    const why = counts.skipped ? `all ${counts.skipped} captured requests were skipped (side-effect policy)` : 'no captured traffic of the stable version to replay';
    return { decision: 'unproven', reasons: [why] };
  }
  const reasons: string[] = [];
  const breaking = counts.breaks / compared;
  const differing = counts.differs / compared;
  if (breaking > thresholds.maxBreakingShare) reasons.push(`${counts.breaks} of ${compared} replayed requests break (${pct(breaking)} > max ${pct(thresholds.maxBreakingShare)})`);
  if (differing > thresholds.maxDifferingShare) reasons.push(`${counts.differs} of ${compared} replayed requests differ beyond noise (${pct(differing)} > max ${pct(thresholds.maxDifferingShare)})`);
  if (reasons.length) return { decision: 'blocked', reasons };
  if (compared < thresholds.minMessages) return { decision: 'unproven', reasons: [`only ${compared} requests replayed, fewer than the ${thresholds.minMessages} needed to prove the version`] };
  return { decision: 'proven', reasons: [`${compared} requests replayed: ${counts.breaks} break, ${counts.differs} differ, ${counts.noise} noise only, ${counts.equal} equal`] };
}
