/**
 * From replayed requests to a report: noise is judged over all of them at once (a path is noise
 * only by how often stable differs there too), then each request gets its outcome, counted overall,
 * per tool and per matrix column.
 */
import { NoiseModel, pathShape, type NoiseThresholds } from './noise.ts';
import type { OutcomeCounts, PathVerdict, ReplayItem, ReplayOutcome, ReplaySample } from './replay-types.ts';
import { cellStatus, clientColumn, columnKey, emptyCounts } from './matrix.ts';
import type { CompatCell, CompatColumn, PathCount } from './types.ts';

/** The name noise and counts are kept under: the tool of a `tools/call`, else the method. */
export const subjectOf = (item: Pick<ReplayItem, 'tool' | 'method'>) => item.tool ?? item.method;

export interface Classified {
  item: ReplayItem;
  outcome: ReplayOutcome;
  /** The differences that count (beyond the noise). */
  significant: ReplayItem['candidateDiffs'];
}

export function classify(items: readonly ReplayItem[], thresholds?: NoiseThresholds): { classified: Classified[]; model: NoiseModel } {
  const model = new NoiseModel(thresholds);
  for (const item of items) if (!item.skipped && !item.broke) model.observe(subjectOf(item), item.candidateDiffs, item.noiseDiffs);
  const classified = items.map((item): Classified => {
    if (item.skipped) return { item, outcome: 'skipped', significant: [] };
    if (item.broke) return { item, outcome: 'breaks', significant: [] };
    if (!item.candidateDiffs.length) return { item, outcome: 'equal', significant: [] };
    const significant = item.candidateDiffs.filter((d) => model.significant(subjectOf(item), d.path));
    return { item, outcome: significant.length ? 'differs' : 'noise', significant };
  });
  return { classified, model };
}

function add(counts: OutcomeCounts, outcome: ReplayOutcome): void {
  counts.replayed++;
  counts[outcome]++;
}

function topPaths(classified: readonly Classified[], limit: number): PathCount[] {
  const byPath = new Map<string, PathCount>();
  for (const { item, outcome, significant } of classified) {
    if (outcome === 'breaks') {
      const key = `breaks ${subjectOf(item)}`;
      const entry = byPath.get(key) ?? { path: `/${subjectOf(item)} (error)`, kind: 'value_changed' as const, count: 0 };
      entry.count++;
      byPath.set(key, entry);
    }
    for (const d of significant) {
      const path = pathShape(d.path);
      const key = `${d.kind} ${path}`;
      const entry = byPath.get(key) ?? { path, kind: d.kind, count: 0 };
      entry.count++;
      byPath.set(key, entry);
    }
  }
  return [...byPath.values()].sort((a, b) => b.count - a.count || a.path.localeCompare(b.path)).slice(0, limit);
}

export interface ReplaySummary {
  counts: OutcomeCounts;
  perTool: Record<string, OutcomeCounts>;
  topPaths: PathCount[];
  noisyPaths: PathVerdict[];
  samples: ReplaySample[];
}

export function summarise(items: readonly ReplayItem[], options: { samples?: number; topPaths?: number; noise?: NoiseThresholds } = {}): ReplaySummary & { classified: Classified[] } {
  const { classified, model } = classify(items, options.noise);
  const counts = emptyCounts();
  const perTool: Record<string, OutcomeCounts> = {};
  for (const { item, outcome } of classified) {
    add(counts, outcome);
    add((perTool[subjectOf(item)] ??= emptyCounts()), outcome);
  }
  const samples = classified
    .filter((c) => c.outcome === 'breaks' || c.outcome === 'differs')
    .slice(0, options.samples ?? 10)
    .map(({ item, outcome, significant }) => ({ index: item.index, method: item.method, ...(item.tool ? { tool: item.tool } : {}), outcome, ...(item.broke ? { reason: item.broke } : {}), diffs: significant.slice(0, 10) }));
  const noisyPaths = model.verdicts().filter((v) => v.noiseRate > 0).sort((a, b) => b.noiseRate - a.noiseRate).slice(0, 20);
  return { counts, perTool, topPaths: topPaths(classified, options.topPaths ?? 10), noisyPaths, samples, classified };
}

/** The matrix cells replay fills: one per client column and one per tool. */
export function replayCells(classified: readonly Classified[], runId: string, at: Date): CompatCell[] {
  const columns = new Map<string, { column: CompatColumn; members: Classified[] }>();
  const put = (column: CompatColumn, c: Classified) => {
    let entry = columns.get(columnKey(column));
    if (!entry) columns.set(columnKey(column), (entry = { column, members: [] }));
    entry.members.push(c);
  };
  for (const c of classified) {
    const { item } = c;
    put(clientColumn(item), c);
    if (item.tool) put({ kind: 'tool', tool: item.tool }, c);
  }
  return [...columns.values()].map(({ column, members }) => {
    const counts = emptyCounts();
    for (const m of members) add(counts, m.outcome);
    return { column, source: 'replay' as const, counts, status: cellStatus(counts), topPaths: topPaths(members, 5), runId, updatedAt: at };
  });
}
