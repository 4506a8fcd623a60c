/**
 * Summarises a V8 .cpuprofile (node --cpu-prof) by stage of the gateway's per-call path, for
 * docs/performance.md: self time per source file (the checkout's files by path, node_modules by
 * package, Node internals as one) and the top functions. Samples are counted, so the figures are
 * shares of the process's CPU while it was sampled, not wall time.
 *
 *   npx tsx bench/lib/profile-summary.ts <file.cpuprofile> [top=30]
 */
import { readFile } from 'node:fs/promises';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, topArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: profile-summary.ts <file.cpuprofile> [top]');
  process.exit(2);
}
const top = Number(topArg ?? 30);
const profile = JSON.parse(await readFile(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfUs = new Map<number, number>();
profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));

/** Where a frame belongs: a checkout path, a package, node internals, or V8's own buckets. */
function place(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm !== -1) {
    const rest = url.slice(nm + 14).split('/');
    return `pkg ${rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  if (url.startsWith('node:')) return 'node internals';
  const m = url.match(/\/work\/main\/(.*)$/) ?? url.match(/file:\/\/(.*)$/);
  return m ? m[1]! : url;
}

const byPlace = new Map<string, number>();
const byFn = new Map<string, number>();
let total = 0;
for (const [id, us] of selfUs) {
  const n = byId.get(id)!;
  const where = place(n.callFrame.url, n.callFrame.functionName);
  byPlace.set(where, (byPlace.get(where) ?? 0) + us);
  const fn = `${n.callFrame.functionName || '(anonymous)'} ${where}:${n.callFrame.lineNumber + 1}`;
  byFn.set(fn, (byFn.get(fn) ?? 0) + us);
  total += us;
}
const pct = (us: number) => `${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(7)} ms`;
console.log(`total sampled: ${(total / 1000).toFixed(0)} ms\n\nself time by file / package:`);
for (const [k, us] of [...byPlace].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(us)}  ${k}`);
console.log('\nself time by function:');
for (const [k, us] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(us)}  ${k}`);

// Inclusive time of the checkout's own functions (each frame counted once per sample, so recursion
// does not count twice): what each stage costs with everything it calls.
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const inclusive = new Map<string, number>();
for (const [id, us] of selfUs) {
  const seen = new Set<string>();
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const n = byId.get(at)!;
    const where = place(n.callFrame.url, n.callFrame.functionName);
    if (where.startsWith('pkg ') || where.startsWith('(') || where === 'node internals') continue;
    const fn = `${n.callFrame.functionName || '(anonymous)'} ${where}:${n.callFrame.lineNumber + 1}`;
    if (seen.has(fn)) continue;
    seen.add(fn);
    inclusive.set(fn, (inclusive.get(fn) ?? 0) + us);
  }
}
console.log('\ninclusive time of the checkout\'s functions:');
for (const [k, us] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(us)}  ${k}`);

// Every sample (idle and GC aside) charged to the nearest of the checkout's frames above it: the
// stage that asked for the work, libraries and Node internals included.
const stage = new Map<string, number>();
let busy = 0;
for (const [id, us] of selfUs) {
  const leaf = byId.get(id)!.callFrame.functionName;
  if (leaf === '(idle)' || leaf === '(program)' || leaf === '(garbage collector)') continue;
  busy += us;
  let owner: string | undefined;
  // Without a checkout frame (I/O callbacks: sockets, the HTTP parser, the MongoDB driver's
  // replies), the nearest library above the leaf says whose work it is.
  let library: string | undefined;
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const n = byId.get(at)!;
    const where = place(n.callFrame.url, n.callFrame.functionName);
    if (where.startsWith('pkg ')) {
      library ??= where;
      continue;
    }
    if (where.startsWith('(') || where === 'node internals') continue;
    owner = `${n.callFrame.functionName || '(anonymous)'} ${where}:${n.callFrame.lineNumber + 1}`;
    break;
  }
  owner ??= `(callback) ${library ?? 'node internals / native'}`;
  stage.set(owner, (stage.get(owner) ?? 0) + us);
}
console.log(`\nbusy (not idle, program or GC): ${(busy / 1000).toFixed(0)} ms; charged to the nearest checkout frame:`);
for (const [k, us] of [...stage].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${((100 * us) / busy).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${k}`);
