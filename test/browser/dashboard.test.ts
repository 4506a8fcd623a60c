/**
 * The dashboard in a real browser (Debian's chromium through playwright-core) against the real
 * stack: Temporal, FerretDB, API, worker and the calculator example as the service. One rollout is
 * followed from the page: the save appears in the stream, the canary's weights and charts move,
 * a refused control says why, and Promote promotes.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { Client, Connection } from '@temporalio/client';
import { startApi } from '../../api/server.ts';
import { RECOVERED_EVENT_KIND, SPILLING_EVENT_KIND } from '../../api/gateway/capture/spill-events.ts';
import { SYSTEM_SERVICE } from '../../alerts/types.ts';
import type { Config } from '../../core/config.ts';
import { createLogger } from '../../core/log.ts';
import type { EventDoc } from '../../core/documents.ts';
import { startSystem, type System } from '../../cli/system.ts';
import { repoRoot } from '../../stack/binaries.ts';
import { freePort } from '../../stack/ports.ts';
import { assertBrowserReady, openBrowserPage } from '../support/browser.ts';
import { McpTraffic } from '../support/mcp-traffic.ts';
import { stackAddresses, testConfig } from '../support/stack-env.ts';
import { waitFor } from '../support/wait.ts';

const SERVICE = 'calc';
/** Kept after the run (test/run.ts removes its own run folder): the screenshots are artefacts. */
const ARTEFACTS = path.join(repoRoot, '.mcpship', 'artefacts', 'browser');
/** Steps long enough for a person (and the test) to act on the canary from the page. */
const ROLLOUT = {
  autoDeploy: true,
  steps: [10, 30, 100],
  intervalSec: 20,
  // A quiet step passes: which sessions land on a 10% canary is chance, and a held step then pauses
  // for a person (the inconclusive rule has its own tests); this file is about the page.
  analysis: { minRequests: 3, requireTraffic: false, minSuccessRate: 0.95, maxP99Ms: 5000, maxFailedChecks: 0, onInconclusive: 'pass' },
  breaker: { minRequests: 5, maxErrorRate: 0.2, windowMs: 10_000, cooldownMs: 60_000 },
  // The replay gate has its own tests; here it would only add minutes before the canary starts.
  replayGate: { enabled: false },
};
/** Controls need it (reads do not): the page must send the one saved in it. */
const ADMIN_TOKEN = 'browser-test-admin-token';

let config: Config;
/** The restarted API's Temporal connection (the first API's is the system's). */
let restarted: Connection | undefined;
let system: System;
let base: string;
let dir: string;
let browser: Browser;
let page: Page;
let consoleErrors: string[];
/** Failed requests a test provokes on purpose. */
let provoked: RegExp[];

const events = (afterSeq: number) => system.events.list({ service: SERVICE, afterSeq, limit: 500 });

function waitForEvent(kind: string, afterSeq: number, version?: string): Promise<EventDoc> {
  return waitFor(`${kind}${version ? `@${version}` : ''}`, async () => (await events(afterSeq)).find((e) => e.kind === kind && (!version || e.version === version)), 600_000, 250);
}

async function editManifest(edit: (m: Record<string, any>) => void): Promise<void> {
  const file = path.join(dir, 'mcp.json');
  const m = JSON.parse(await readFile(file, 'utf8'));
  edit(m);
  await writeFile(file, JSON.stringify(m, null, 2));
}

async function screenshot(name: string): Promise<void> {
  await mkdir(ARTEFACTS, { recursive: true });
  const file = path.join(ARTEFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`screenshot: ${file}`);
}

/** The status of a GET with a given Host header (fetch does not let a caller set Host). */
function statusWithHost(url: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get(url, { headers: { host } }, (res) => (res.resume(), resolve(res.statusCode ?? 0))).on('error', reject);
  });
}

/** Waits until the page has refreshed its panels after now (the refresh loop stamps the body). */
async function refreshed(): Promise<void> {
  const since = new Date().toISOString();
  await page.waitForFunction((t) => (document.body.dataset.refreshed ?? '') > t, since, { timeout: 120_000 });
}

before(async () => {
  assertBrowserReady();
  config = testConfig({
    MCPSHIP_API_PORT: String(await freePort()),
    MCPSHIP_DEBOUNCE_MS: '100',
    MCPSHIP_ADMIN_TOKEN: ADMIN_TOKEN,
    // The stream test waits for an alert the evaluator raises.
    MCPSHIP_ALERTS_INTERVAL_SEC: '2',
    MCPSHIP_DRAIN_MS: '500',
    ...(stackAddresses().temporalUiUrl ? { MCPSHIP_TEMPORAL_UI_URL: stackAddresses().temporalUiUrl } : {}),
  });
  system = await startSystem(config, createLogger('warn'), { worker: true, api: true });
  base = system.api!.url;
  dir = path.join(config.servicesDir, SERVICE);
  await cp(path.join(repoRoot, 'examples', 'services', 'calculator'), dir, { recursive: true, filter: (src) => !/node_modules|dist/.test(src) });
  await editManifest((m) => {
    m.name = SERVICE;
    m.rollout = ROLLOUT;
    // Only the build the instances need: test/run.ts gives a whole file 10 minutes, and lint and
    // the service's own tests would spend minutes of them on a loaded machine, twice.
    m.steps = { ...m.steps, lint: { run: 'true', timeoutSec: 60 }, test: { run: 'true', timeoutSec: 60 } };
  });
  await waitForEvent('PROMOTED', 0, '1.0.0');

  ({ browser, page, consoleErrors, provoked } = await openBrowserPage());
});

after(async () => {
  await browser?.close();
  await system?.stop();
  await restarted?.close();
});

test('the overview loads with no console error and shows the three panels and the service', async () => {
  await page.goto(`${base}/`);
  await page.getByRole('table', { name: 'Services' }).getByRole('link', { name: SERVICE }).waitFor({ timeout: 120_000 });
  for (const panel of ['File watch status', 'Deployment health', 'Transform success rate', 'Alerts']) {
    assert.ok(await page.getByRole('region', { name: panel }).isVisible(), `panel ${panel}`);
  }
  assert.equal(await page.getByRole('group', { name: 'services' }).locator('.value').textContent(), '1');
  assert.equal(await page.getByRole('region', { name: 'Deployment health' }).getByRole('group', { name: 'active' }).locator('.value').textContent(), '1');
  assert.match((await page.getByRole('region', { name: 'Transform success rate' }).textContent()) ?? '', /no transforms/);
  const alerts = (await page.getByRole('region', { name: 'Alerts' }).textContent()) ?? '';
  assert.match(alerts, /no alerts|firing|resolved|pending/);
  await page.locator('#stream-status[data-state="live"]').waitFor({ timeout: 60_000 });
  const res = await fetch(`${base}/`);
  assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'self'/, 'nothing but this origin may load');
  assert.equal(await statusWithHost(`${base}/`, 'rebound.example'), 403, 'a DNS-rebinding page cannot read the dashboard');
  assert.equal(await statusWithHost(`${base}/app.js`, 'rebound.example'), 403);
  await screenshot('overview');
  assert.deepEqual(consoleErrors, []);
});

test('a save shows up in the live stream', async () => {
  const from = await system.events.lastSeq();
  const savedAt = Date.now();
  await writeFile(path.join(dir, 'src', 'note.js'), 'export const note = "v2";\n');
  // The list already holds the first version's VALIDATING: wait for one newer than the save.
  // Checked every animation frame in the page, and timed there, when it first appears.
  const shown = await page.waitForFunction(
    ({ service, after }) => {
      const li = [...document.querySelectorAll<HTMLElement>(`#event-list li[data-kind="VALIDATING"][data-service="${service}"]`)].find((el) => Number(el.dataset.seq) > after);
      return li ? { seq: Number(li.dataset.seq), at: Date.now() } : undefined;
    },
    { service: SERVICE, after: from },
    { timeout: 120_000, polling: 'raf' },
  );
  const { seq, at: seenAt } = (await shown.jsonValue())!;
  const event = (await events(from)).find((e) => e.seq === seq);
  assert.equal(event?.kind, 'VALIDATING', `the event shown (seq ${seq}) is the VALIDATING that followed the save (events up to ${from} came before it)`);
  console.log(
    `save → VALIDATING on the page: ${seenAt - savedAt} ms (save → event stored ${event!.time.getTime() - savedAt} ms, stored → shown ${seenAt - event!.time.getTime()} ms; debounce 100 ms)`,
  );
  await page.getByLabel('Kind').selectOption('VALIDATING');
  assert.ok((await page.locator('#event-list li').count()) >= 1);
  assert.equal(await page.locator('#event-list li:not([data-kind="VALIDATING"])').count(), 0, 'the kind filter hides other kinds');
  await page.getByLabel('Kind').selectOption('');
});

test("the canary's weights and charts change as the rollout steps; a refused control shows the reason; Promote promotes", async () => {
  const traffic = new McpTraffic(`${base}/mcp/${SERVICE}`);
  try {
    await page.goto(`${base}/#/services/${SERVICE}`);
    const canaryWeight = page.locator('[data-weight="1.0.1"]');
    const seen: string[] = [];
    const points: number[] = [];
    await waitFor(
      'the page to show the canary at 10% then 30%',
      async () => {
        const text = (await canaryWeight.textContent({ timeout: 1_000 }).catch(() => null))?.trim();
        if (text && seen.at(-1) !== text) seen.push(text);
        const rate = await page.locator('#chart-rate').getAttribute('data-points').catch(() => null);
        if (text && rate) points.push(Number(rate));
        return seen.includes('10%') && seen.includes('30%');
      },
      // Under the file's 600 s ceiling, so that a stuck rollout fails with what the page showed.
      480_000,
      200,
    ).catch(async (err: Error) => {
      const states = (await system.store.versions.find({ service: SERVICE }).toArray()).map((v) => `${v.version} ${v.state}`);
      throw new Error(`${err.message}; weights seen ${seen.join(' → ') || 'none'}; page stage ${await page.locator('#dep-stage').textContent().catch(() => '?')}; versions ${states.join(', ')}`);
    });
    console.log(`canary weights seen on the page: ${seen.join(' → ')}`);
    assert.ok(seen.indexOf('10%') < seen.indexOf('30%'), `weights in rollout order: ${seen.join(' → ')}`);
    // An admin token is set and the page has none yet: the API refuses the control, the page says why.
    provoked.push(/\/api\/services\/calc\/pause$/);
    await page.getByRole('button', { name: 'Pause' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
    await page.getByRole('alert').filter({ hasText: 'Pause refused' }).waitFor({ timeout: 60_000 });
    assert.match((await page.getByRole('alert').textContent()) ?? '', /^Pause refused: this route needs Authorization: Bearer <admin token>/);
    provoked.pop();
    await page.getByLabel('Admin token').fill(ADMIN_TOKEN);
    await page.getByRole('button', { name: 'Save token' }).click();
    // Paused, the canary holds at 30% while the page is looked at; Pause is then disabled with the workflow's reason.
    await page.getByRole('button', { name: 'Pause' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
    await page.locator('#control-pause[disabled]').waitFor({ timeout: 60_000 });
    assert.equal(await page.getByRole('button', { name: 'Pause' }).getAttribute('aria-describedby'), 'control-pause-reason');
    assert.equal(await page.locator('#control-pause-reason').textContent(), 'already paused');

    await page.locator('#dep-stage', { hasText: 'CANARY' }).waitFor({ timeout: 60_000 });
    const rateCaption = page.locator('#chart-rate-caption');
    await waitFor('the request-rate chart to show the canary', async () => /1\.0\.1 [1-9]\d* requests/.test((await rateCaption.textContent()) ?? ''), 120_000, 250);
    await waitFor('the charts to gain points as time passes', async () => Number(await page.locator('#chart-rate').getAttribute('data-points')) > Math.min(...points), 120_000, 500);
    assert.match((await page.locator('#chart-histogram-caption').textContent()) ?? '', /1\.0\.0 \d+ requests.*1\.0\.1 \d+ requests|1\.0\.1 \d+ requests/);
    await page.getByRole('table', { name: 'Analysis history' }).waitFor({ timeout: 120_000 });
    await screenshot('service-canary');

    // A refusal only the workflow knows: the page sends it, the API refuses, the reason is shown.
    provoked.push(/\/api\/services\/calc\/set-weight$/);
    await page.getByRole('spinbutton', { name: 'Canary weight (%)' }).fill('150');
    await page.getByRole('button', { name: 'Set weight' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
    const notice = page.getByRole('alert');
    await notice.filter({ hasText: 'refused' }).waitFor({ timeout: 60_000 });
    assert.match((await notice.textContent()) ?? '', /Set weight refused: weight must be a whole number from 0 to 100, got 150/);
    provoked.pop();

    const from = await system.events.lastSeq();
    await page.getByRole('button', { name: 'Promote' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
    const promoted = await waitForEvent('PROMOTED', from, '1.0.1');
    assert.ok(promoted.seq > from);
    await page.locator('#dep-stage', { hasText: 'ACTIVE' }).waitFor({ timeout: 120_000 });
    await page.locator(`#event-list li[data-kind="PROMOTED"][data-seq="${promoted.seq}"]`).waitFor({ timeout: 60_000 });
    assert.equal((await system.store.versions.findOne({ service: SERVICE, version: '1.0.1' }))?.state, 'ACTIVE');
  } finally {
    const report = await traffic.stop();
    console.log(`traffic during the rollout: ${report.ok} calls ok, ${report.failed} failed`);
  }
});

test('after the rollout: controls are disabled with the reason, have accessible names, and runs link to Temporal Web UI', async () => {
  await refreshed();
  for (const name of ['Promote', 'Pause', 'Resume', 'Abort', 'Set weight']) {
    const button = page.getByRole('button', { name, exact: true });
    assert.ok(await button.isDisabled(), `${name} is disabled once nothing is rolling out`);
  }
  const reason = page.locator('#control-promote-reason');
  assert.equal(await reason.textContent(), `${SERVICE} has no deployment in progress`);
  assert.equal(await page.getByRole('button', { name: 'Promote' }).getAttribute('aria-describedby'), 'control-promote-reason');
  assert.ok(await page.getByRole('button', { name: 'Roll back to 1.0.0' }).isEnabled(), 'the archived 1.0.0 is a rollback target');
  assert.ok(await page.getByRole('button', { name: 'Restore 1.0.0' }).isEnabled());
  assert.ok(await page.getByRole('button', { name: 'Restore 1.0.1' }).isDisabled());
  assert.ok(await page.getByRole('button', { name: 'Archive 1.0.1' }).isEnabled());
  assert.ok(await page.getByRole('combobox', { name: 'Service' }).isVisible());
  assert.ok(await page.getByRole('combobox', { name: 'Kind' }).isVisible());

  const ui = stackAddresses().temporalUiUrl;
  if (ui) {
    const link = page.getByRole('table', { name: 'Runs' }).getByRole('link', { name: `deploy/${SERVICE}/1.0.1` }).first();
    assert.ok((await link.getAttribute('href'))?.startsWith(`${ui}/namespaces/`), 'a deployment run links to its Temporal Web UI page');
  }
  assert.match((await page.getByRole('region', { name: 'Compatibility matrix' }).textContent()) ?? '', /no compatibility results yet|Version/);
  // The replay gate is off here (ROLLOUT), so no replay ran; the section says so rather than "not available".
  assert.equal(await page.getByRole('region', { name: 'Replay reports' }).locator('.section-body').textContent(), 'no replays yet');
  await screenshot('service');
  assert.deepEqual(consoleErrors, []);
});

test('the live stream survives the API going away: the page says it was cut, then shows every event of the meantime once (Last-Event-ID)', async () => {
  await page.goto(`${base}/`);
  await page.locator('#stream-status[data-state="live"]').waitFor({ timeout: 60_000 });
  const from = await system.events.lastSeq();
  await page.locator(`#event-list li[data-seq="${from}"]`).waitFor({ timeout: 60_000 });
  // While the API is away every request of the page fails, and Chrome logs each one.
  provoked.push(/./);
  const stoppedAt = new Date();
  await system.api!.close();
  await page.locator('#stream-status[data-state="reconnecting"]').waitFor({ timeout: 60_000 });
  const cut = /^disconnected since .+; reconnecting from event #(\d+)$/.exec((await page.locator('#stream-note').textContent()) ?? '');
  assert.ok(cut && Number(cut[1]) >= from, `the page says it is cut off, and from where: ${cut?.[0]}`);

  // Meanwhile: a gateway's capture spills and recovers (the events as api/gateway/capture/spill-events.ts
  // writes them), and the worker's evaluator raises the captureSpilling alert on them.
  const gateway = { writer: 'browser1', host: 'node-a', pid: 4242 };
  const spilling = await system.events.append({ service: SYSTEM_SERVICE, kind: SPILLING_EVENT_KIND, status: 'failed', details: { ...gateway, since: stoppedAt.toISOString(), reason: 'MongoDB unavailable', pending: 120, spillBytes: 40_960 } });
  await system.events.append({
    service: SYSTEM_SERVICE,
    kind: RECOVERED_EVENT_KIND,
    status: 'ok',
    details: { ...gateway, since: stoppedAt.toISOString(), until: new Date().toISOString(), durationMs: Date.now() - stoppedAt.getTime(), spilled: 120, replayed: 120, dropped: 0 },
  });
  const firing = await waitFor('the captureSpilling alert to fire', async () => (await system.events.list({ service: SYSTEM_SERVICE, kind: 'ALERT_FIRING', afterSeq: from })).find((e) => e.details?.rule === 'captureSpilling'), 120_000, 250);

  restarted = await Connection.connect({ address: system.stack.temporalAddress });
  system.api = await startApi({
    config,
    store: system.store,
    events: system.events,
    log: createLogger('warn'),
    temporalAddress: system.stack.temporalAddress,
    ...(system.stack.temporalUiUrl ? { temporalUiUrl: system.stack.temporalUiUrl } : {}),
    temporal: new Client({ connection: restarted, namespace: config.temporal.namespace }),
  });
  assert.equal(system.api.url, base, 'the same port');
  await page.locator('#stream-status[data-state="live"]').waitFor({ timeout: 60_000 });
  await page.locator('#stream-note[data-drops="1"]').waitFor({ timeout: 60_000 });
  assert.match((await page.locator('#stream-note').textContent()) ?? '', new RegExp(`^disconnected from .+ to .+ \\(\\d+ s\\); resumed after event #${cut[1]}, `));
  await page.locator(`#event-list li[data-seq="${firing.seq}"]`).waitFor({ timeout: 60_000 });
  provoked.pop();

  const stored = (await system.events.list({ afterSeq: from, limit: 500 })).filter((e) => e.seq <= firing.seq);
  const shown = await page.$$eval('#event-list li', (items) => items.map((li) => Number((li as HTMLElement).dataset.seq)));
  assert.equal(new Set(shown).size, shown.length, 'no event shown twice');
  assert.deepEqual(
    shown.filter((seq) => seq > from && seq <= firing.seq).sort((a, b) => a - b),
    stored.map((e) => e.seq),
    'every event of the meantime, in the list once',
  );
  assert.match(
    (await page.locator(`#event-list li[data-seq="${spilling.seq}"]`).textContent()) ?? '',
    /capture\.spilling mcpship on node-a\/4242: 120 messages waiting on disk since .+ — MongoDB unavailable/,
  );
  await page.getByRole('region', { name: 'Alerts' }).getByText(/firing mcpship captureSpilling: capture spilled on node-a\/4242 from .+: 120 messages, 120 replayed, 0 dropped/).waitFor({ timeout: 60_000 });
  await screenshot('overview-after-reconnect');
  assert.deepEqual(consoleErrors, []);
});
