/**
 * `npm run bench`: the benchmarks one after the other, each in its own process (each starts and
 * stops its own stack, so one cannot leave anything behind for the next). They print figures
 * next to a baseline measured in the same run and the issue's targets; they never assert.
 *
 *   npm run bench                 all of them
 *   npm run bench -- gateway      only those whose file name contains "gateway"
 *
 * Knobs (env): BENCH_SAVES, BENCH_BASELINE_RUNS (pipeline); BENCH_CALLS, BENCH_CLIENTS,
 * BENCH_WARMUP, BENCH_ROUNDS, BENCH_SERIAL_CALLS (gateway, stateless-routing); BENCH_PROMOTIONS, BENCH_BREACHES,
 * BENCH_INTERVAL_SEC (rollout); MCPSHIP_DEBOUNCE_MS; TEMPORAL_ADDRESS
 * and MONGODB_URI to measure against an external stack instead of the embedded one.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { execa } from 'execa';
import { repoRoot } from '../stack/binaries.ts';

const BENCHMARKS = ['pipeline-latency.ts', 'gateway-overhead.ts', 'gateway-scale.ts', 'gateway-capture-db.ts', 'session-store.ts', 'capture-indexes.ts', 'stateless-routing.ts', 'rollout.ts', 'replay.ts', 'transforms.ts'];

const filter = process.argv.slice(2);
const chosen = BENCHMARKS.filter((file) => filter.length === 0 || filter.some((f) => file.includes(f)));
if (chosen.length === 0) {
  console.error(`no benchmark matches ${filter.join(' ')}; there are: ${BENCHMARKS.join(', ')}`);
  process.exit(2);
}

const failed: string[] = [];
for (const file of chosen) {
  const started = performance.now();
  console.error(`\n>>> bench/${file}`);
  const result = await execa(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'bench', file)], { cwd: repoRoot, stdio: 'inherit', reject: false });
  console.error(`<<< bench/${file}: ${result.exitCode === 0 ? 'done' : `exited with ${result.exitCode ?? result.signal}`} in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  if (result.exitCode !== 0) failed.push(file);
}
// A benchmark that could not run is an error; figures that miss a target are not.
if (failed.length) {
  console.error(`\nfailed to run: ${failed.join(', ')}`);
  process.exitCode = 1;
}
