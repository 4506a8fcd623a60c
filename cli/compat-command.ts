import type { CompatAnswer } from '../api/routes/compatibility.ts';
import { columnKey } from '../compat/matrix.ts';
import type { CompatSource } from '../compat/types.ts';
import type { ApiClient } from './api-client.ts';

const SOURCE: Record<CompatSource, string> = { round_trip: 'rt', schema: 'schema', replay: 'replay' };

const pct = (r: number | null) => (r === null ? '-' : `${(r * 100).toFixed(1)}%`);

/** The matrix as a text table (versions down, clients then tools across), its failing paths, and the transforms' success rates. */
export function formatCompat(answer: CompatAnswer): string {
  const lines: string[] = [];
  if (answer.rows.length === 0) lines.push(`${answer.service}: no compatibility results yet (they come from validation with transforms, and from replays)`);
  else {
    const keys = answer.columns.map(columnKey);
    const table = [['version', ...keys]];
    for (const row of answer.rows) {
      table.push([
        row.version,
        ...keys.map((k) => row.cells.filter((c) => columnKey(c.column) === k).map((c) => `${SOURCE[c.source]}:${c.status}`).join(' ') || '-'),
      ]);
    }
    const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
    for (const r of table) lines.push(r.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd());
    const failing = answer.rows.flatMap((row) =>
      row.cells.filter((c) => c.status === 'differs' || c.status === 'breaks').map((c) => `  ${row.version} ${columnKey(c.column)} (${SOURCE[c.source]}, ${c.status}): ${c.topPaths.slice(0, 3).map((p) => `${p.path} ×${p.count}`).join(', ') || 'no path'}`),
    );
    if (failing.length > 0) lines.push('', 'failing paths:', ...failing);
  }
  if (answer.transforms.length > 0) {
    lines.push('', 'transforms (all gateways): forward ok / failed, backward ok / failed, success forward / backward');
    for (const t of answer.transforms) {
      lines.push(`  ${t.transformId}  ${t.forwardApplied} / ${t.forwardFailed}, ${t.backwardApplied} / ${t.backwardFailed}, ${pct(t.forwardSuccessRate)} / ${pct(t.backwardSuccessRate)}`);
    }
  }
  return lines.join('\n');
}

export async function compatCommand(api: ApiClient, service: string, opts: { json?: boolean } = {}): Promise<void> {
  const answer = await api.get<CompatAnswer>(`/api/services/${encodeURIComponent(service)}/compatibility`);
  console.log(opts.json ? JSON.stringify(answer) : formatCompat(answer));
}
