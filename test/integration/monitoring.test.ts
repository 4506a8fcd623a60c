/**
 * Monitoring on the real stack: the CLI (spawned as a user runs it) deploys and follows rollouts
 * through the event stream, `status` shows them, and /metrics, scraped under real MCP traffic, is
 * parsed with a Prometheus text-format parser.
 */
import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { execa, type ResultPromise } from 'execa';
import { MCP_METHODS, NO_METHOD } from '../../api/gateway/prom-observer.ts';
import { startSystem, type System } from '../../cli/system.ts';
import { createLogger } from '../../core/log.ts';
import { repoRoot } from '../../stack/binaries.ts';
import { freePort } from '../../stack/ports.ts';
import { McpTraffic } from '../support/mcp-traffic.ts';
import { parsePrometheusText, seriesOf, type PromFamily } from '../support/prometheus-text.ts';
import { testConfig } from '../support/stack-env.ts';
import { waitFor } from '../support/wait.ts';

const SERVICE = 'calc';
let system: System;
let base: string;
let config: ReturnType<typeof testConfig>;
let dir: string;
let traffic: McpTraffic | undefined;

before(async () => {
  config = testConfig({ MCPSHIP_API_PORT: String(await freePort()), MCPSHIP_DEBOUNCE_MS: '100', MCPSHIP_DRAIN_MS: '500' });
  system = await startSystem(config, createLogger('warn'), { worker: true, api: true });
  base = system.api!.url;
  dir = path.join(config.servicesDir, SERVICE);
  await cp(path.join(repoRoot, 'examples', 'services', 'calculator'), dir, { recursive: true, filter: (src) => !/node_modules|dist/.test(src) });
  const file = path.join(dir, 'mcp.json');
  const manifest = JSON.parse(await readFile(file, 'utf8'));
  manifest.name = SERVICE;
  // Deployed by hand (the CLI), in short steps; the replay gate replays a small sample.
  manifest.rollout = {
    autoDeploy: false,
    steps: [50, 100],
    intervalSec: 2,
    analysis: { minRequests: 3, requireTraffic: false, minSuccessRate: 0.9, maxP99Ms: 5000, maxFailedChecks: 0 },
    // The replay gate has tests of its own; here it would only make the rollout longer.
    replayGate: { enabled: false },
  };
  await writeFile(file, JSON.stringify(manifest, null, 2));
});

after(async () => {
  await traffic?.stop();
  await system?.stop();
});

/** The CLI as a user runs it, against this test's API. */
function cli(...args: string[]): ResultPromise<{ reject: false; all: true }> {
  return execa(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'cli', 'main.ts'), ...args, '--api', base], { reject: false, all: true, cwd: repoRoot, env: { MCPSHIP_LOG_LEVEL: 'warn' } });
}

const staged = (version: string) => waitFor(`${SERVICE}@${version} staged`, async () => (await system.store.versions.findOne({ service: SERVICE, version }))?.state === 'STAGED', 300_000, 250);

test('mcpship deploy follows the first deployment to the end, with progress lines', async () => {
  await staged('1.0.0');
  const run = await cli('deploy', SERVICE, '1.0.0');
  assert.equal(run.exitCode, 0, run.all);
  assert.match(run.all!, /calc@1\.0\.0: deploy started \(deploy\/calc\/1\.0\.0\)/);
  assert.match(run.all!, /DEPLOYMENT_STARTED/);
  assert.match(run.all!, /PROMOTED/);
  assert.match(run.all!, /calc: 1\.0\.0 is active/);
});

test('/metrics under MCP traffic: parsed as Prometheus text, bounded labels, every family documented', async () => {
  traffic = new McpTraffic(`${base}/mcp/${SERVICE}`);
  await waitFor('traffic to flow', () => traffic!.report.ok > 30, 120_000);
  const res = await fetch(`${base}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const families = parsePrometheusText(text);
  const series = seriesOf(text);
  const family = (name: string): PromFamily => {
    const f = families.find((x) => x.name === name);
    assert.ok(f, `${name} is exposed (have: ${families.map((x) => x.name).join(', ')})`);
    return f;
  };
  const value = (name: string, labels: Record<string, string>) =>
    Number(family(name).metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))?.value ?? NaN);

  const requests = family('mcpship_gateway_requests_total');
  assert.equal(requests.type, 'COUNTER');
  assert.ok(value('mcpship_gateway_requests_total', { service: SERVICE, version: '1.0.0', method: 'tools/call', outcome: 'ok' }) >= 30);
  assert.ok(value('mcpship_gateway_requests_total', { service: SERVICE, version: '1.0.0', method: 'initialize', outcome: 'ok' }) >= 1);
  const allowedMethods = new Set<string>([...MCP_METHODS, 'other', NO_METHOD]);
  for (const m of requests.metrics) {
    assert.deepEqual(Object.keys(m.labels ?? {}).sort(), ['method', 'outcome', 'service', 'version'], 'no client or session labels');
    assert.ok(allowedMethods.has(m.labels!.method!), `method label ${m.labels!.method}`);
  }
  assert.equal(family('mcpship_gateway_request_duration_seconds').type, 'HISTOGRAM');
  const ofCalls = (name: string) => series.get(name)!.filter((m) => m.labels?.method === 'tools/call' && m.labels.version === '1.0.0');
  const count = Number(ofCalls('mcpship_gateway_request_duration_seconds_count')[0]?.value);
  assert.ok(count >= 30, `tools/call latencies observed: ${count}`);
  const buckets = ofCalls('mcpship_gateway_request_duration_seconds_bucket').map((m) => Number(m.value));
  assert.deepEqual(buckets, [...buckets].sort((a, b) => a - b), 'cumulative buckets');
  assert.equal(buckets.at(-1), count, 'the +Inf bucket holds them all');
  assert.ok(Number(ofCalls('mcpship_gateway_request_duration_seconds_sum')[0]?.value) > 0);

  assert.equal(value('mcpship_breaker_state', { service: SERVICE, version: '1.0.0', state: 'closed' }), 1);
  assert.ok(value('mcpship_gateway_clients', { service: SERVICE, version: '1.0.0' }) >= 1);
  assert.ok(value('mcpship_sessions_open', { service: SERVICE, version: '1.0.0' }) >= 1);
  assert.ok(value('mcpship_capture_messages_total', { outcome: 'captured' }) > 0);
  assert.ok(value('mcpship_capture_queue_messages', {}) >= 0);
  assert.equal(family('mcpship_validation_step_duration_seconds').type, 'HISTOGRAM');
  const lint = series.get('mcpship_validation_step_duration_seconds_count')!.find((m) => m.labels?.service === SERVICE && m.labels.step === 'lint' && m.labels.outcome === 'ok');
  assert.equal(Number(lint?.value), 1, 'the one validation since the API started');
  assert.equal(value('mcpship_deployments_finished_total', { service: SERVICE, outcome: 'promoted' }), 1);
  family('process_cpu_user_seconds_total');
  family('nodejs_heap_size_used_bytes');

  // Every mcpship family is in the README's table.
  const readme = await readFile(path.join(repoRoot, 'README.md'), 'utf8');
  for (const f of families.filter((x) => x.name.startsWith('mcpship_'))) assert.ok(readme.includes(`\`${f.name}\``), `${f.name} documented in README`);
});

test('/metrics is behind the Host guard like /api', async () => {
  const port = new URL(base).port;
  const status = await new Promise<number>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/metrics', headers: { host: `rebound.example:${port}` } }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    }).on('error', reject);
  });
  assert.equal(status, 403);
});

test('deploy of a new version follows the canary steps under traffic; status shows it; rollback --json follows back', async () => {
  await writeFile(path.join(dir, 'src', 'note.js'), 'export const note = "v2";\n');
  await staged('1.0.1');

  let watch: ResultPromise | undefined;
  try {
    watch = execa(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'cli', 'main.ts'), 'status', '--watch', '--json', '--interval', '1', '--api', base], { reject: false, cwd: repoRoot, env: { MCPSHIP_LOG_LEVEL: 'warn' } });
    const frames: any[] = [];
    watch.stdout!.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n').filter(Boolean)) frames.push(JSON.parse(line));
    });
    const run = await cli('deploy', SERVICE, '1.0.1');
    assert.equal(run.exitCode, 0, run.all);
    const lines = run.all!.split('\n');
    const steps = lines.filter((l) => /CANARY_STEP/.test(l));
    assert.ok(steps.some((l) => /step 1\/2\s+\[#{10}\.{10}\]\s+50%/.test(l)), `a progress bar at 50%:\n${run.all}`);
    assert.ok(lines.some((l) => /ANALYSIS/.test(l)), 'analyses show');
    assert.match(lines.at(-1)!, /calc: 1\.0\.1 is active/);

    // The watch saw the canary as it happened.
    await waitFor('a status frame with 1.0.1 deploying', () => frames.some((f) => f.services.some((s: any) => s.deployment?.running && s.deployment.version === '1.0.1' && s.deployment.stage === 'CANARY')), 30_000);
    watch.kill('SIGTERM');
    await watch;
  } finally {
    watch?.kill('SIGKILL');
  }

  const status = await cli('status', '--json');
  assert.equal(status.exitCode, 0, status.all);
  const row = JSON.parse(status.stdout).services.find((s: any) => s.service.name === SERVICE);
  assert.equal(row.service.activeVersion, '1.0.1');

  const back = await cli('rollback', SERVICE, '--json');
  assert.equal(back.exitCode, 0, back.all);
  const objects = back.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  assert.equal(objects[0].command, 'rollback');
  assert.equal(objects[0].answer.version, '1.0.0');
  assert.equal(objects.at(-1).kind, 'PROMOTED');
  assert.equal(objects.at(-1).version, '1.0.0');

  const refused = await cli('abort', SERVICE);
  assert.equal(refused.exitCode, 2, 'nothing to abort: the API refuses and the CLI says why');
  assert.match(refused.stderr, /^mcpship: /);
});
