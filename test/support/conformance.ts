/**
 * The public MCP conformance suite (npm @modelcontextprotocol/conformance), installed as a tool in
 * tools/conformance with the Node 22 it needs, run in server mode against a URL. Results are read
 * per check from the `checks.json` each scenario writes under the output directory.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { repoRoot } from '../../stack/binaries.ts';

const TOOL_DIR = path.join(repoRoot, 'tools', 'conformance');
const NODE = path.join(TOOL_DIR, 'node_modules', '.bin', 'node');
const CLI = path.join(TOOL_DIR, 'node_modules', '@modelcontextprotocol', 'conformance', 'dist', 'index.js');

/** The spec revisions the suite has requirement sets for, each run at its own wire version. */
export type Requirements = '2025-11-25' | '2026-07-28';

export interface CheckResult {
  status: string;
  errorMessage?: string;
}

/** Every check of a run, keyed `scenario/check-id`; a check a scenario emits twice has two results. */
export type ConformanceResults = Map<string, CheckResult[]>;

/** `server-<scenario>-<ISO timestamp with dashes>` → `<scenario>`. */
export function scenarioOf(dirName: string): string {
  return dirName.replace(/^server-/, '').replace(/-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/, '');
}

/** Runs `conformance server --url URL --requirements R` and reads back every check it wrote. */
export async function runConformance(url: string, requirements: Requirements, outRoot: string): Promise<ConformanceResults> {
  if (!existsSync(NODE) || !existsSync(CLI)) throw new Error('the MCP conformance suite is not installed: run `bash tools/conformance/install.sh` (tools/setup.sh does)');
  const outDir = await mkdtemp(path.join(outRoot, `conformance-${requirements}-`));
  // It exits non-zero when a scored check fails, which through a gateway under test is a finding, not a crash.
  const run = await execa(NODE, [CLI, 'server', '--url', url, '--requirements', requirements, '-o', outDir], { reject: false, all: true, stdin: 'ignore' });
  const results: ConformanceResults = new Map();
  for (const dir of (await readdir(outDir)).sort()) {
    const file = path.join(outDir, dir, 'checks.json');
    if (!existsSync(file)) continue;
    for (const check of JSON.parse(await readFile(file, 'utf8')) as ({ id: string } & CheckResult)[]) {
      const key = `${scenarioOf(dir)}/${check.id}`;
      results.set(key, [...(results.get(key) ?? []), { status: check.status, errorMessage: check.errorMessage }]);
    }
  }
  if (results.size === 0) throw new Error(`conformance wrote no results (exit ${run.exitCode}):\n${run.all}`);
  return results;
}

/** Checks that passed: every result under the key is SUCCESS. */
export function passing(results: ConformanceResults): Set<string> {
  return new Set([...results].filter(([, all]) => all.every((r) => r.status === 'SUCCESS')).map(([key]) => key));
}

/** Why a check did not pass in a run, in one line. */
export function reason(results: ConformanceResults, key: string): string {
  const all = results.get(key);
  if (!all) return 'not run';
  return all
    .filter((r) => r.status !== 'SUCCESS')
    .map((r) => `${r.status}${r.errorMessage ? `: ${r.errorMessage.replace(/\s+/g, ' ').slice(0, 300)}` : ''}`)
    .join(' | ');
}

/**
 * How a run through a proxy differs from the direct run: checks that pass directly but not through
 * it (lost, with the reason seen through it) and the other way round (gained).
 */
export function compare(direct: ConformanceResults, proxied: ConformanceResults): { lost: string[]; gained: string[] } {
  const directPass = passing(direct);
  const proxiedPass = passing(proxied);
  return {
    lost: [...directPass].filter((k) => !proxiedPass.has(k)).map((k) => `${k} — ${reason(proxied, k)}`),
    gained: [...proxiedPass].filter((k) => !directPass.has(k)).map((k) => `${k} — directly: ${reason(direct, k)}`),
  };
}
