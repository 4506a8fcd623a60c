/** Transform counters summed over gateways (transformMetrics), with the success rate each way. */
import type { Store } from '../core/mongo.ts';

export interface TransformStats {
  transformId: string;
  forwardApplied: number;
  forwardFailed: number;
  backwardApplied: number;
  backwardFailed: number;
  durationMs: number;
  /** Applied / (applied + failed), each way; null when the transform never ran that way. */
  forwardSuccessRate: number | null;
  backwardSuccessRate: number | null;
}

const rate = (ok: number, failed: number) => (ok + failed === 0 ? null : ok / (ok + failed));

export async function readTransformStats(store: Pick<Store, 'transformMetrics'>, service: string): Promise<TransformStats[]> {
  const sums = new Map<string, Omit<TransformStats, 'forwardSuccessRate' | 'backwardSuccessRate'>>();
  for (const d of await store.transformMetrics.find({ service }).toArray()) {
    const s = sums.get(d.transformId) ?? { transformId: d.transformId, forwardApplied: 0, forwardFailed: 0, backwardApplied: 0, backwardFailed: 0, durationMs: 0 };
    s.forwardApplied += d.forwardApplied;
    s.forwardFailed += d.forwardFailed;
    s.backwardApplied += d.backwardApplied;
    s.backwardFailed += d.backwardFailed;
    s.durationMs += d.durationMs;
    sums.set(d.transformId, s);
  }
  return [...sums.values()]
    .sort((a, b) => a.transformId.localeCompare(b.transformId))
    .map((s) => ({ ...s, forwardSuccessRate: rate(s.forwardApplied, s.forwardFailed), backwardSuccessRate: rate(s.backwardApplied, s.backwardFailed) }));
}
