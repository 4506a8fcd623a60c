/**
 * Round-trip transform validation on one core (issue 9, target ≥ 20,000 messages/s): captured
 * calculator 1.0.0 traffic — tools/call requests as clients wrote them, their 2.0.0 answers as the
 * server wrote them, a tools/list answer now and then — through the sample chain
 * (examples/upgrades/calculator-2.0.0/transforms) and back, compared with the original. Measured
 * from the stored documents (JSON text parsed per message, as validation does) and from parsed
 * messages. Figures only.
 *
 *   BENCH_MESSAGES (default 100000), BENCH_ROUNDS (default 3)
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { buildChain } from '../compat/chain.ts';
import { roundTripCaptured, type CapturedDoc } from '../compat/captured.ts';
import { loadTransforms } from '../compat/load.ts';
import { roundTrip, type RoundTripInput } from '../compat/round-trip.ts';
import { repoRoot } from '../stack/binaries.ts';

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 100_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const TARGET = 20_000;
const OPS = ['add', 'subtract', 'multiply', 'divide'];

const transforms = await loadTransforms(path.join(repoRoot, 'examples/upgrades/calculator-2.0.0'));
const chain = buildChain('calculator', transforms, '1.0.0', '2.0.0');
const tools = OPS.map((name) => ({
  name,
  description: `${name} two numbers`,
  inputSchema: { type: 'object', properties: { x: { type: 'number' }, y: { type: 'number' } }, required: ['x', 'y'], $schema: 'http://json-schema.org/draft-07/schema#' },
  outputSchema: { type: 'object', properties: { value: { type: 'number' } }, required: ['value'] },
}));

/** Pairs of request (1.0.0, pinned) and answer (2.0.0); every 50th exchange a tools/list. */
function capture(n: number): CapturedDoc[] {
  const docs: CapturedDoc[] = [];
  for (let i = 0; docs.length < n; i++) {
    const base = { truncated: false, version: '2.0.0', versionAsked: '1.0.0', rpcId: i, sessionId: `s${i % 64}` } as const;
    if (i % 50 === 0) {
      docs.push({ ...base, messageId: `q${i}`, direction: 'client_to_server', kind: 'request', raw: JSON.stringify({ jsonrpc: '2.0', id: i, method: 'tools/list', params: {} }) });
      docs.push({ ...base, messageId: `a${i}`, direction: 'server_to_client', kind: 'response', raw: JSON.stringify({ jsonrpc: '2.0', id: i, result: { tools } }) });
      continue;
    }
    const op = OPS[i % OPS.length]!;
    const [a, b] = [i % 1000, (i * 7) % 97];
    docs.push({ ...base, messageId: `q${i}`, direction: 'client_to_server', kind: 'request', raw: JSON.stringify({ jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: op, arguments: { a, b }, _meta: { progressToken: i } } }) });
    docs.push({ ...base, messageId: `a${i}`, direction: 'server_to_client', kind: 'response', raw: JSON.stringify({ jsonrpc: '2.0', id: i, result: { content: [{ type: 'text', text: String(a + b) }], structuredContent: { value: a + b } } }) });
  }
  return docs.slice(0, n);
}

const docs = capture(MESSAGES);
const inputs: RoundTripInput[] = [];
{
  const requests = new Map<number, Record<string, unknown>>();
  for (const d of docs) {
    const message = JSON.parse(d.raw) as Record<string, unknown>;
    if (d.direction === 'client_to_server') {
      requests.set(d.rpcId as number, message);
      inputs.push({ direction: d.direction, kind: 'request', message });
    } else inputs.push({ direction: d.direction, kind: 'response', message, request: requests.get(d.rpcId as number)!, at: 'to' });
  }
}

console.log(`round-trip transform validation, one core: ${MESSAGES} captured messages, chain ${chain.steps.map((s) => s.id).join(' → ')}, ${ROUNDS} rounds (target ≥ ${TARGET.toLocaleString('en')}/s)`);
/** Wall time and this process's CPU time of fn (on a shared machine the CPU figure is the one-core rate). */
function timed<T>(fn: () => T): { value: T; wallMs: number; cpuMs: number } {
  const [wall, cpu] = [performance.now(), process.cpuUsage()];
  const value = fn();
  const used = process.cpuUsage(cpu);
  return { value, wallMs: performance.now() - wall, cpuMs: (used.user + used.system) / 1000 };
}
const rate = (ms: number) => Math.round((MESSAGES / ms) * 1000).toLocaleString('en');
for (let round = 1; round <= ROUNDS; round++) {
  const fromDocs = timed(() => roundTripCaptured('calculator', transforms, '2.0.0', docs));
  const r = fromDocs.value.reports[0]!;
  const parsed = timed(() => inputs.filter((input) => roundTrip(chain, input).outcome === 'exact').length);
  console.log(
    `  round ${round}: from stored documents ${rate(fromDocs.wallMs)} msg/s wall, ${rate(fromDocs.cpuMs)} msg/s per CPU second (${r.exact} exact, ${r.unchecked} unchecked, ${r.lossy} lossy, ${r.failed} failed); ` +
      `parsed messages ${rate(parsed.wallMs)} msg/s wall, ${rate(parsed.cpuMs)} per CPU second (${parsed.value} exact)`,
  );
}
