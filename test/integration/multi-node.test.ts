/**
 * Beyond one machine, on one machine: two runner nodes (`mcpship runner`, advertising 127.0.0.2 and
 * 127.0.0.3), two gateways (`mcpship api`), a worker without a runner, one Temporal and one FerretDB.
 * A service is deployed, rolled out and rolled back under live MCP traffic through both gateways;
 * a session opened through one gateway goes on through the other; then one node is killed outright
 * and its instances must be re-placed on the other while traffic goes on. The figures (failed
 * calls, time to re-place, calls of a shared session) are printed.
 */
import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { ResultPromise } from 'execa';
import { startSystem, type System } from '../../cli/system.ts';
import type { Config } from '../../core/config.ts';
import { createLogger } from '../../core/log.ts';
import { readRouting } from '../../core/routing-store.ts';
import { repoRoot } from '../../stack/binaries.ts';
import { freePort } from '../../stack/ports.ts';
import { McpTraffic, type TrafficReport } from '../support/mcp-traffic.ts';
import { testConfig } from '../support/stack-env.ts';
import { waitFor } from '../support/wait.ts';
import { startMcpshipProcess } from '../support/worker-process.ts';

const SERVICE = 'calc';
const WAIT_MS = 300_000;
/** Short for the test, yet renewed three times per lease: a loaded machine can delay a renewal by seconds. */
const LEASE_MS = 6_000;
const NODES = { 'node-a': '127.0.0.2', 'node-b': '127.0.0.3' } as const;
const ROLLOUT = {
  autoDeploy: true,
  instances: 2,
  steps: [50, 100],
  intervalSec: 2,
  analysis: { minRequests: 3, requireTraffic: false, minSuccessRate: 0.9, maxP99Ms: 10_000, maxFailedChecks: 1 },
  // Replays run in the worker, not on the nodes (test/integration/replay*.test.ts cover them); here they would only add load.
  replayGate: { enabled: false },
};

let config: Config;
let worker: System;
const gatewayPorts: number[] = [];
const children = new Map<string, ResultPromise>();
/** The last output of every child, shown when a wait gives up. */
const output = new Map<string, string>();

function spawn(name: string, command: 'runner' | 'api', env: Record<string, string>): ResultPromise {
  const child = startMcpshipProcess(command, config, { MCPSHIP_LOG_LEVEL: 'warn', ...env });
  const keep = (chunk: Buffer) => output.set(name, ((output.get(name) ?? '') + chunk.toString()).slice(-4000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  children.set(name, child);
  return child;
}

function waitLong<T>(what: string, check: () => Promise<T | undefined | false>): Promise<T> {
  return waitFor(what, check, WAIT_MS, 200).catch((err: Error) => {
    throw new Error(`${err.message}\n${[...output].map(([name, text]) => `--- ${name}\n${text}`).join('\n')}`);
  });
}

const gateway = (i: number) => `http://127.0.0.1:${gatewayPorts[i]}`;
const dir = () => path.join(config.servicesDir, SERVICE);

async function waitForEvent(version: string, kind: string, afterSeq: number): Promise<void> {
  await waitLong(`${SERVICE}@${version} ${kind}`, async () => (await worker.events.list({ service: SERVICE, afterSeq, limit: 1000 })).some((e) => e.version === version && e.kind === kind));
}

/** Traffic through both gateways at once. */
function trafficOnBoth(): McpTraffic[] {
  return [0, 1].map((i) => new McpTraffic(`${gateway(i)}/mcp/${SERVICE}`));
}

async function stopAll(traffic: McpTraffic[]): Promise<TrafficReport[]> {
  return Promise.all(traffic.map((t) => t.stop()));
}

const readyByNode = async (version: string) => {
  const docs = await worker.store.instances.find({ service: SERVICE, version, state: 'ready' }).toArray();
  return docs.map((d) => `${d.nodeId}@${new URL(d.url).hostname}`).sort();
};

before(async () => {
  gatewayPorts.push(await freePort(), await freePort());
  config = testConfig({ MCPSHIP_DEBOUNCE_MS: '100', MCPSHIP_DRAIN_MS: '500', MCPSHIP_NODE_LEASE_MS: String(LEASE_MS) });
  // The worker (workflows, watcher) in this process, without a runner: instances only run on the nodes.
  worker = await startSystem(config, createLogger('warn'), { worker: true, runner: false, api: false });
  for (const [nodeId, host] of Object.entries(NODES)) spawn(nodeId, 'runner', { MCPSHIP_NODE_ID: nodeId, MCPSHIP_ADVERTISE_HOST: host });
  gatewayPorts.forEach((port, i) => spawn(`gateway-${i}`, 'api', { MCPSHIP_API_PORT: String(port) }));
  await waitLong('both nodes registered', async () => (await worker.store.nodes.countDocuments({ leaseUntil: { $gt: new Date() } })) === 2);
  for (const i of [0, 1]) await waitLong(`gateway ${i} answering`, async () => (await fetch(`${gateway(i)}/api/health`).catch(() => undefined))?.ok);
});

after(async () => {
  for (const child of children.values()) {
    child.kill('SIGTERM');
    await child;
  }
  await worker?.stop();
});

test("a first version is deployed with its two instances spread over both nodes, each at its node's advertised address", async () => {
  await cp(path.join(repoRoot, 'examples', 'services', 'calculator'), dir(), { recursive: true, filter: (src) => !/node_modules|dist/.test(src) });
  const file = path.join(dir(), 'mcp.json');
  const manifest = JSON.parse(await readFile(file, 'utf8'));
  await writeFile(file, JSON.stringify({ ...manifest, name: SERVICE, rollout: ROLLOUT }, null, 2));
  await waitForEvent('1.0.0', 'PROMOTED', 0);
  assert.deepEqual(await waitLong('two ready instances', async () => ((await readyByNode('1.0.0')).length === 2 ? readyByNode('1.0.0') : undefined)), ['node-a@127.0.0.2', 'node-b@127.0.0.3']);
});

test('a rollout and a rollback under live traffic through both gateways lose no call', async () => {
  const traffic = trafficOnBoth();
  await waitLong('traffic on both gateways', async () => traffic.every((t) => t.report.ok > 5));
  let from = await worker.events.lastSeq();
  await writeFile(path.join(dir(), 'src', 'note.js'), 'export const note = "v2";\n');
  await waitForEvent('1.0.1', 'PROMOTED', from);
  assert.deepEqual((await readyByNode('1.0.1')).map((s) => s.split('@')[0]), ['node-a', 'node-b']);

  from = await worker.events.lastSeq();
  const res = await fetch(`${gateway(1)}/api/services/${SERVICE}/rollback`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ version: '1.0.0' }) });
  assert.equal(res.status, 202, await res.text());
  await waitForEvent('1.0.0', 'PROMOTED', from);
  assert.equal((await readRouting(worker.store, SERVICE)).stable, '1.0.0');
  const reports = await stopAll(traffic);
  console.log(`rollout + rollback: ${reports.map((r, i) => `gateway ${i}: ${r.ok} ok, ${r.failed} failed, ${r.reinitialized} sessions re-opened after 404`).join('; ')}`);
  for (const r of reports) assert.equal(r.failed, 0, `client errors: ${r.errors.join(' | ')}`);
});

test('a session opened through one gateway goes on through the other, and ends for both', async () => {
  const endpoint = (i: number) => new URL(`${gateway(i)}/mcp/${SERVICE}`);
  const opener = new StreamableHTTPClientTransport(endpoint(0));
  const viaZero = new Client({ name: 'shared-session', version: '1.0.0' });
  await viaZero.connect(opener);
  const sessionId = opener.sessionId;
  assert.ok(sessionId, 'the server gave the session an id');
  // The same session, a transport of its own, the other gateway: the SDK reconnects without initialize.
  const joiner = new StreamableHTTPClientTransport(endpoint(1), { sessionId });
  joiner.setProtocolVersion(opener.protocolVersion!);
  const viaOne = new Client({ name: 'shared-session', version: '1.0.0' });
  await viaOne.connect(joiner);
  const calls = 20;
  const took: number[][] = [[], []];
  for (let n = 0; n < calls; n++) {
    const i = n % 2;
    const startedAt = performance.now();
    const result = await [viaZero, viaOne][i]!.callTool({ name: 'add', arguments: { a: n, b: 1 } });
    took[i]!.push(performance.now() - startedAt);
    assert.deepEqual(result.structuredContent, { result: n + 1 }, `call ${n} through gateway ${i}`);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`shared session: ${calls} of ${calls} calls alternating between the two gateways answered on one session; median ${took.map((t, i) => `gateway ${i} ${median(t).toFixed(1)} ms`).join(', ')}`);
  // Ended through gateway 1: gateway 0 knows at once, from MongoDB.
  await joiner.terminateSession();
  await assert.rejects(viaZero.callTool({ name: 'add', arguments: { a: 1, b: 1 } }), (err) => err instanceof StreamableHTTPError && err.code === 404);
  await Promise.all([viaZero.close(), viaOne.close()]);
});

test("a killed node's instances are re-placed on the live node, and traffic goes on", async () => {
  const traffic = trafficOnBoth();
  await waitLong('traffic on both gateways', async () => traffic.every((t) => t.report.ok > 5));
  const killedAt = performance.now();
  children.get('node-b')!.kill('SIGKILL');
  await children.get('node-b');
  await waitLong('both instances ready on node-a', async () => {
    const ready = await readyByNode('1.0.0');
    return ready.length === 2 && ready.every((s) => s === 'node-a@127.0.0.2');
  });
  const replacedMs = performance.now() - killedAt;
  const okAtReplace = traffic.map((t) => t.report.ok);
  const failedAtReplace = traffic.reduce((sum, t) => sum + t.report.failed, 0);
  await waitLong('traffic after the re-placement', async () => traffic.every((t, i) => t.report.ok > okAtReplace[i]! + 20));
  const reports = await stopAll(traffic);
  const failed = reports.reduce((sum, r) => sum + r.failed, 0);
  console.log(
    `node killed: instances re-placed in ${Math.round(replacedMs)} ms (lease ${LEASE_MS} ms; ${failedAtReplace} calls failed until then); ` +
      reports.map((r, i) => `gateway ${i}: ${r.ok} ok, ${r.failed} failed, ${r.reinitialized} sessions re-opened after 404`).join('; ') +
      (failed ? `; errors: ${reports.flatMap((r) => r.errors).slice(0, 5).join(' | ')}` : ''),
  );
  assert.equal(await worker.store.instances.countDocuments({ nodeId: 'node-b', state: { $ne: 'stopped' } }), 0, "the dead node's instances are marked stopped");
  assert.equal(await worker.store.placements.countDocuments({ nodeId: 'node-b' }), 0);
  // Ended by the dead runner's guardian, not lapsed: that is what makes the re-placement prompt.
  assert.equal((await worker.store.nodes.findOne({ nodeId: 'node-b' }))?.leaseUntil.getTime(), 0, "node-b's lease was ended by its guardian");
  // Calls in flight on the killed node are dropped (502, ECONNRESET). A new session the dead node
  // refuses is opened on the live one by the gateway, and its sessions hear 404 and start over;
  // once its instances are back on the live node, no call may fail.
  assert.equal(failed - failedAtReplace, 0, 'calls failed after the re-placement');
  for (const error of reports.flatMap((r) => r.errors)) assert.match(error, /did not answer \(ECONNRESET\)/, 'a failure other than a call in flight on the dead node');
});
