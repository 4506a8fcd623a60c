/**
 * The compatibility matrix: cells from the round-trip test and the schema diff (differential
 * replay writes its own), stored one document per cell, and the matrix put together from them.
 */
import type { CompatCellDoc, MessageDoc } from '../core/documents.ts';
import type { Store } from '../core/mongo.ts';
import { compareVersions } from '../core/semver.ts';
import type { CompatCell, CompatColumn, CompatCounts, CompatMatrix, CompatSource, CompatStatus, PathCount, RoundTripResult, SchemaDiffReport } from './types.ts';
import { topPaths } from './round-trip.ts';

/** A column's stable key, e.g. `client:2026-07-28:claude-code:1.2.0` or `tool:add`. */
export function columnKey(column: CompatColumn): string {
  return column.kind === 'tool' ? `tool:${column.tool}` : `client:${column.protocolRevision}:${column.clientName}:${column.clientVersion}`;
}

const UNKNOWN = 'unknown';

/** The client column of a captured message. */
export function clientColumn(doc: Pick<MessageDoc, 'protocolRevision' | 'clientName' | 'clientVersion'>): CompatColumn {
  return { kind: 'client', protocolRevision: doc.protocolRevision ?? UNKNOWN, clientName: doc.clientName ?? UNKNOWN, clientVersion: doc.clientVersion ?? UNKNOWN };
}

export function emptyCounts(): CompatCounts {
  return { replayed: 0, equal: 0, noise: 0, differs: 0, breaks: 0, skipped: 0 };
}

/** The worst outcome with a count; skipped when nothing was compared. */
export function cellStatus(counts: CompatCounts): CompatStatus {
  if (counts.breaks > 0) return 'breaks';
  if (counts.differs > 0) return 'differs';
  if (counts.noise > 0) return 'noise';
  if (counts.equal > 0) return 'equal';
  return 'skipped';
}

/**
 * Round-trip results as cells, one per client column and one per tool: exact is equal, lossy
 * differs, a transform that threw breaks, unchecked (no inverse) skipped.
 */
export function roundTripCells(results: readonly RoundTripResult[], docs: ReadonlyMap<string, Pick<MessageDoc, 'protocolRevision' | 'clientName' | 'clientVersion'>>, runId: string, now = new Date()): CompatCell[] {
  const groups = new Map<string, { column: CompatColumn; results: RoundTripResult[] }>();
  const add = (column: CompatColumn, r: RoundTripResult) => {
    const key = columnKey(column);
    const g = groups.get(key) ?? { column, results: [] };
    g.results.push(r);
    groups.set(key, g);
  };
  for (const r of results) {
    const doc = r.messageId !== undefined ? docs.get(r.messageId) : undefined;
    add(clientColumn(doc ?? {}), r);
    if (r.toolName !== undefined) add({ kind: 'tool', tool: r.toolName }, r);
  }
  return [...groups.values()].map(({ column, results: rs }) => {
    const counts = emptyCounts();
    for (const r of rs) {
      if (r.outcome === 'unchecked') {
        counts.skipped++;
        continue;
      }
      counts.replayed++;
      if (r.outcome === 'exact') counts.equal++;
      else if (r.outcome === 'lossy') counts.differs++;
      else counts.breaks++;
    }
    return { column, source: 'round_trip' as const, counts, status: cellStatus(counts), topPaths: topPaths(rs, 5), runId, updatedAt: now };
  });
}

/** Schema changes as per-tool cells: the captured calls of the tool, the rejected ones breaking, risky changes differing. */
export function schemaCells(report: SchemaDiffReport, runId: string, now = new Date()): CompatCell[] {
  const byTool = new Map<string, SchemaDiffReport['changes']>();
  for (const c of report.changes) byTool.set(c.tool, [...(byTool.get(c.tool) ?? []), c]);
  return [...byTool.entries()].map(([tool, changes]) => {
    const calls = Math.max(...changes.map((c) => c.usage.calls));
    const rejected = Math.max(...changes.map((c) => c.usage.rejected));
    const risky = changes.some((c) => c.class === 'risky');
    const breaking = changes.some((c) => c.class === 'breaking');
    const counts = { ...emptyCounts(), replayed: calls, breaks: rejected, differs: breaking || !risky ? 0 : calls - rejected, equal: risky ? 0 : calls - rejected };
    // A breaking change nobody used yet still breaks the tool for the clients that will.
    if (breaking && counts.breaks === 0) counts.breaks = 1;
    const paths: PathCount[] = changes.map((c) => ({ path: `${c.kind}${c.path ?? ''}`, kind: 'schema', count: c.usage.rejected }));
    return { column: { kind: 'tool' as const, tool }, source: 'schema' as const, counts, status: cellStatus(counts), topPaths: paths, runId, updatedAt: now };
  });
}

/** Replaces a source's cells of one version (a new run's cells supersede the previous run's). */
export async function writeCells(store: Pick<Store, 'compatCells'>, service: string, version: string, source: CompatSource, cells: readonly CompatCell[]): Promise<void> {
  const keys = cells.map((c) => columnKey(c.column));
  for (const [i, cell] of cells.entries()) {
    const doc: CompatCellDoc = { ...cell, service, version, columnKey: keys[i]! };
    await store.compatCells.replaceOne({ service, version, source, columnKey: doc.columnKey }, doc, { upsert: true });
  }
  await store.compatCells.deleteMany({ service, version, source, columnKey: { $nin: keys } });
}

/** The matrix of a service: newest version first, client columns then tool columns. */
export function assembleMatrix(service: string, docs: readonly CompatCellDoc[]): CompatMatrix {
  const rows = new Map<string, CompatCell[]>();
  const columns = new Map<string, CompatColumn>();
  for (const d of docs) {
    const { service: _s, version, columnKey: key, ...cell } = d as CompatCellDoc & { _id?: unknown };
    delete (cell as { _id?: unknown })._id;
    rows.set(version, [...(rows.get(version) ?? []), cell]);
    columns.set(key, d.column);
  }
  const ordered = [...columns.entries()].sort(([a, x], [b, y]) => (x.kind === y.kind ? a.localeCompare(b) : x.kind === 'client' ? -1 : 1)).map(([, c]) => c);
  return {
    service,
    rows: [...rows.entries()].sort(([a], [b]) => compareVersions(b, a)).map(([version, cells]) => ({ version, cells: cells.sort((p, q) => columnKey(p.column).localeCompare(columnKey(q.column)) || p.source.localeCompare(q.source)) })),
    columns: ordered,
  };
}

export async function readMatrix(store: Pick<Store, 'compatCells'>, service: string): Promise<CompatMatrix> {
  return assembleMatrix(service, await store.compatCells.find({ service }, { projection: { _id: 0 } }).toArray());
}
