/**
 * Transparency of the gateway, proven by the public MCP conformance suite: the `everything` sample
 * (both protocol generations at one endpoint) is saved as a service on the real stack, validated,
 * deployed, and the suite runs in server mode against the running instance directly and through
 * `/mcp/<service>`, for the 2025-11-25 (sessions) and 2026-07-28 (stateless) requirement sets.
 * Every check that passes directly must pass through the gateway, and nothing else, also while a
 * second version takes half of the traffic as a canary.
 */
import assert from 'node:assert/strict';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { startSystem, type System } from '../../cli/system.ts';
import type { EventDoc } from '../../core/documents.ts';
import { createLogger } from '../../core/log.ts';
import { readRouting } from '../../core/routing-store.ts';
import { repoRoot } from '../../stack/binaries.ts';
import { freePort } from '../../stack/ports.ts';
import { compare, passing, runConformance, type ConformanceResults, type Requirements } from '../support/conformance.ts';
import { testConfig } from '../support/stack-env.ts';
import { waitFor } from '../support/wait.ts';

const SERVICE = 'everything';
const REVISIONS: Requirements[] = ['2025-11-25', '2026-07-28'];
/** Validation, deployment and four suite runs on a busy machine: a guard against a hang only. */
const GUARD = { timeout: 900_000 };
/**
 * The canary holds at 50% for the whole test: one step far longer than the test, and no automatic
 * verdict, since the suite's deliberate errors (tool errors, refused requests) are not a regression.
 */
const ROLLOUT = {
  autoDeploy: true,
  steps: [50, 100],
  intervalSec: 3600,
  analysis: { minRequests: 1, requireTraffic: false, minSuccessRate: 0, maxP99Ms: 60_000, maxFailedChecks: 100 },
  breaker: { maxErrorRate: 1, minRequests: 1_000_000 },
};

let system: System;
let config: ReturnType<typeof testConfig>;
let dir: string;
let gatewayUrl: string;
let outRoot: string;
/** The direct run against 1.0.0, per revision: the reference the gateway runs are held to. */
const direct = new Map<Requirements, ConformanceResults>();
/** Requests the gateway had sent each version when the canary began. */
let requestsBeforeCanary: Record<string, number> = {};

before(async () => {
  config = testConfig({ MCPSHIP_API_PORT: String(await freePort()), MCPSHIP_DEBOUNCE_MS: '100', MCPSHIP_DRAIN_MS: '500' });
  system = await startSystem(config, createLogger('warn'), { worker: true, api: true });
  gatewayUrl = `${system.api!.url}/mcp/${SERVICE}`;
  dir = path.join(config.servicesDir, SERVICE);
  outRoot = path.join(config.stateDir, 'conformance');
  await mkdir(outRoot, { recursive: true });
});

after(async () => {
  await system?.stop();
});

async function editManifest(edit: (m: Record<string, unknown>) => void): Promise<void> {
  const file = path.join(dir, 'mcp.json');
  const manifest = JSON.parse(await readFile(file, 'utf8'));
  edit(manifest);
  await writeFile(file, JSON.stringify(manifest, null, 2));
}

function waitForEvent(version: string, kind: string): Promise<EventDoc> {
  return waitFor(
    `${SERVICE}@${version} ${kind}`,
    async () => (await system.events.list({ service: SERVICE, limit: 500 })).find((e) => e.version === version && e.kind === kind),
    // Under the file's 600 s ceiling, so that a stuck rollout fails with its timeline.
    480_000,
    250,
  ).catch(async (err) => {
    const timeline = (await system.events.list({ service: SERVICE, limit: 500 })).map((e) => `${e.kind}${e.version ? `@${e.version}` : ''}`);
    throw new Error(`${(err as Error).message}\nevents: ${timeline.join(' ')}`);
  });
}

/** The MCP endpoint of a version's running instance, the address the gateway proxies to. */
async function instanceUrl(version: string): Promise<string> {
  const instance = await waitFor(`a ready instance of ${SERVICE}@${version}`, () => system.store.instances.findOne({ service: SERVICE, version, state: 'ready' }).then((i) => i ?? undefined), 120_000, 250);
  return instance.url;
}

/** Requests the gateway has proxied to each version of the service, from its metrics buckets. */
async function gatewayRequests(): Promise<Record<string, number>> {
  const totals: Record<string, number> = {};
  for (const bucket of await system.store.metrics.find({ service: SERVICE }).toArray()) totals[bucket.version] = (totals[bucket.version] ?? 0) + bucket.requests;
  return totals;
}

/** Holds a gateway run to the direct one: the same checks pass, and some do. */
function assertSamePassSet(t: TestContext, revision: Requirements, reference: ConformanceResults, viaGateway: ConformanceResults, label: string): void {
  const { lost, gained } = compare(reference, viaGateway);
  t.diagnostic(`${revision} ${label}: ${passing(reference).size} checks pass directly, ${passing(viaGateway).size} through the gateway`);
  assert.ok(passing(reference).size > 0, `${revision}: no check passes directly`);
  // One readable list of differences (names and the reason seen on the losing side), not a dump of both sets.
  assert.ok(
    lost.length === 0 && gained.length === 0,
    `${revision} ${label}: ${lost.length} checks pass directly but not through the gateway:\n  ${lost.join('\n  ')}\n${gained.length} pass only through it:\n  ${gained.join('\n  ')}`,
  );
}

test('the everything sample is validated and goes live as a service', GUARD, async () => {
  await cp(path.join(repoRoot, 'examples', 'services', SERVICE), dir, { recursive: true, filter: (src) => !/node_modules|dist/.test(src) });
  await editManifest((m) => (m.rollout = ROLLOUT));
  await waitForEvent('1.0.0', 'PROMOTED');
  const routing = await readRouting(system.store, SERVICE);
  assert.equal(routing.stable, '1.0.0');
});

for (const revision of REVISIONS) {
  test(`conformance ${revision}: the same checks pass through the gateway as directly`, GUARD, async (t) => {
    const reference = await runConformance(await instanceUrl('1.0.0'), revision, outRoot);
    direct.set(revision, reference);
    assertSamePassSet(t, revision, reference, await runConformance(gatewayUrl, revision, outRoot), 'one version');
  });
}

test('a second version takes 50% as a canary', GUARD, async () => {
  await editManifest((m) => (m.description = 'everything, canary copy'));
  await waitForEvent('1.0.1', 'CANARY_STEP');
  const routing = await readRouting(system.store, SERVICE);
  assert.equal(routing.weights['1.0.1'], 50);
  assert.equal(routing.weights['1.0.0'], 50);
  requestsBeforeCanary = await gatewayRequests();
});

for (const revision of REVISIONS) {
  test(`conformance ${revision} at a 50/50 canary: the same checks pass through the gateway as directly`, GUARD, async (t) => {
    const reference = direct.get(revision);
    assert.ok(reference, `the direct ${revision} run of 1.0.0 happened`);
    // The canary's own instance serves the suite just as the stable one does; the gateway must too.
    const canaryDirect = await runConformance(await instanceUrl('1.0.1'), revision, outRoot);
    assert.deepEqual([...passing(canaryDirect)].sort(), [...passing(reference)].sort(), `${revision}: 1.0.1 passes what 1.0.0 passes`);
    assertSamePassSet(t, revision, reference, await runConformance(gatewayUrl, revision, outRoot), '50/50 canary');
  });
}

test('the canary runs really were split between the two versions', GUARD, async (t) => {
  // New 2025 sessions follow the weights, so ~30 of them cannot all land on one side; the metrics
  // are flushed every second, hence the wait.
  const served = await waitFor(
    'both versions to show requests from the canary runs',
    async () => {
      const now = await gatewayRequests();
      const delta = Object.fromEntries(['1.0.0', '1.0.1'].map((v) => [v, (now[v] ?? 0) - (requestsBeforeCanary[v] ?? 0)]));
      return delta['1.0.0']! > 0 && delta['1.0.1']! > 0 ? delta : undefined;
    },
    30_000,
    250,
  );
  t.diagnostic(`requests the gateway sent during the canary runs: ${JSON.stringify(served)}`);
});
