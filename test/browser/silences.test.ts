/**
 * Silences from the dashboard's alerts panel, in a real browser against the real API, event store
 * and alert evaluator: a firing alert is silenced from the page (with the admin token the page
 * holds), the silence is listed and the API says the alert is silenced; it is ended from the page;
 * one made through the API shows up on the open page. No services and no Temporal worker: a
 * dropped-capture event raises the alert, as a gateway's would.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import type { Browser, Page } from 'playwright-core';
import { startAlertEvaluator, type AlertEvaluator } from '../../alerts/evaluator.ts';
import type { SilenceDoc } from '../../alerts/types.ts';
import type { AlertsAnswer } from '../../api/routes/alerts.ts';
import { startSystem, type System } from '../../cli/system.ts';
import { ALERT_EVENT_KINDS } from '../../core/events.ts';
import type { Wire } from '../../dashboard/src/api.ts';
import { createLogger } from '../../core/log.ts';
import { freePort } from '../../stack/ports.ts';
import { assertBrowserReady, openBrowserPage } from '../support/browser.ts';
import { testConfig } from '../support/stack-env.ts';
import { waitFor } from '../support/wait.ts';

const SERVICE = 'calc';
const ALERT_ID = `captureDropping/${SERVICE}`;
const ADMIN_TOKEN = 'browser-silences-admin-token';

let system: System;
let connection: Connection;
let evaluator: AlertEvaluator;
let base: string;
let browser: Browser;
let page: Page;
let consoleErrors: string[];
let provoked: RegExp[];

async function alertsApi(): Promise<Wire<AlertsAnswer>> {
  const res = await fetch(`${base}/api/alerts`);
  assert.equal(res.status, 200);
  return (await res.json()) as Wire<AlertsAnswer>;
}

const alertRow = (extra = '') => page.getByRole('region', { name: 'Alerts' }).locator(`li[data-alert-id="${ALERT_ID}"]${extra}`);
const silences = () => page.getByRole('table', { name: 'Silences' });

async function confirm(question: RegExp): Promise<void> {
  const dialog = page.getByRole('dialog');
  assert.match((await dialog.locator('#confirm-text').textContent()) ?? '', question);
  await dialog.getByRole('button', { name: 'Confirm' }).click();
}

before(async () => {
  assertBrowserReady();
  const config = testConfig({ MCPSHIP_API_PORT: String(await freePort()), MCPSHIP_ADMIN_TOKEN: ADMIN_TOKEN, MCPSHIP_ALERTS_INTERVAL_SEC: '1' });
  system = await startSystem(config, createLogger('warn'), { worker: false, api: true });
  base = system.api!.url;
  // The worker's evaluator without the worker: this file needs alerts, not workflows.
  connection = await Connection.connect({ address: system.stack.temporalAddress });
  evaluator = startAlertEvaluator({ config, store: system.store, events: system.events, temporal: new Client({ connection, namespace: config.temporal.namespace }), log: createLogger('warn') });
  await system.events.append({ service: SERVICE, kind: 'capture.messages_dropped', status: 'failed', details: { count: 7 } });
  ({ browser, page, consoleErrors, provoked } = await openBrowserPage());
});

after(async () => {
  await browser?.close();
  await evaluator?.stop();
  await system?.stop();
  await connection?.close();
});

test('a firing alert is silenced from the page, listed, silenced in the API, and ended from the page', async () => {
  await page.goto(`${base}/`);
  await alertRow().filter({ hasText: /^firing calc captureDropping: / }).waitFor({ timeout: 60_000 });
  assert.equal(await alertRow().getAttribute('data-silenced'), null);
  assert.equal(await page.getByRole('region', { name: 'Silences' }).locator('.empty').textContent(), 'no silences');

  // "Silence…" on the alert sets the form to its service and rule; without a reason the API would refuse.
  await page.getByRole('button', { name: `Silence ${ALERT_ID}…` }).click();
  const form = page.getByRole('group', { name: 'New silence' });
  assert.equal(await form.getByLabel('Service').inputValue(), SERVICE);
  assert.equal(await form.getByLabel('Rule').inputValue(), 'captureDropping');
  const add = form.getByRole('button', { name: 'Add silence' });
  assert.ok(await add.isDisabled());
  assert.equal(await add.getAttribute('aria-describedby'), 'silence-create-reason');
  assert.match((await page.locator('#silence-create-reason').textContent()) ?? '', /^say why first/);
  await form.getByLabel('For (minutes)').fill('0');
  await form.getByLabel('Reason').fill('disk full on node-a, being fixed');
  assert.match((await page.locator('#silence-create-reason').textContent()) ?? '', /whole number of minutes from 1 to 43200/);
  await form.getByLabel('For (minutes)').fill('30');
  assert.ok(await add.isEnabled());

  // The page holds no admin token yet: the API refuses and the page says why; the form keeps what was typed.
  provoked.push(/\/api\/alerts\/silences$/);
  await add.click();
  await confirm(/^Silence calc \/ captureDropping for 30 min \("disk full on node-a, being fixed"\)\?$/);
  await page.getByRole('alert').filter({ hasText: 'Silence refused' }).waitFor({ timeout: 30_000 });
  assert.match((await page.getByRole('alert').textContent()) ?? '', /^Silence refused: this route needs Authorization: Bearer <admin token>/);
  provoked.pop();
  assert.equal((await alertsApi()).silences.length, 0);
  await page.getByLabel('Admin token').fill(ADMIN_TOKEN);
  await page.getByRole('button', { name: 'Save token' }).click();

  const asked = Date.now();
  await add.click();
  await confirm(/^Silence calc \/ captureDropping for 30 min/);
  const row = silences().getByRole('row').filter({ hasText: 'disk full on node-a, being fixed' });
  await row.waitFor({ timeout: 30_000 });
  assert.match((await row.textContent()) ?? '', /^calc \/ captureDropping/);
  assert.match((await row.textContent()) ?? '', new RegExp(ALERT_ID), 'the silence lists the alert it silences');
  assert.equal(await form.getByLabel('Reason').inputValue(), '', 'the form is cleared once the silence is made');

  const { alerts, silences: inForce } = await alertsApi();
  assert.equal(inForce.length, 1);
  const [silence] = inForce;
  assert.deepEqual({ service: silence!.service, rule: silence!.rule, comment: silence!.comment }, { service: SERVICE, rule: 'captureDropping', comment: 'disk full on node-a, being fixed' });
  const minutes = (new Date(silence!.expiresAt).getTime() - asked) / 60_000;
  assert.ok(minutes > 29.5 && minutes <= 30.5, `silenced for 30 minutes (${minutes.toFixed(2)})`);
  const alert = alerts.find((a) => a.alertId === ALERT_ID);
  assert.equal(alert?.state, 'firing');
  assert.equal(alert?.silence, silence!.silenceId, 'the API says the alert is silenced, by this silence');
  await alertRow(`[data-silenced="${silence!.silenceId}"]`).waitFor({ timeout: 30_000 });
  assert.match((await alertRow().locator('.badge.silenced').textContent()) ?? '', /^silenced until .+ \(disk full on node-a, being fixed\)$/);
  assert.equal(await page.getByRole('button', { name: `Silence ${ALERT_ID}…` }).count(), 0, 'a silenced alert offers no second silence');

  const from = await system.events.lastSeq();
  await row.getByRole('button', { name: 'End silence of calc / captureDropping: disk full on node-a, being fixed' }).click();
  await confirm(/^End the silence of calc \/ captureDropping \("disk full on node-a, being fixed"\) now\?$/);
  await page.getByRole('region', { name: 'Silences' }).getByText('no silences').waitFor({ timeout: 30_000 });
  await alertRow(':not([data-silenced])').waitFor({ timeout: 30_000 });
  const ended = await alertsApi();
  assert.equal(ended.silences.length, 0);
  assert.equal(ended.alerts.find((a) => a.alertId === ALERT_ID)?.silence, undefined);
  const [endedEvent] = await system.events.list({ kind: ALERT_EVENT_KINDS.silenceEnded, afterSeq: from });
  assert.equal(endedEvent?.details?.silenceId, silence!.silenceId, 'ending a silence is an event in the stream');
  assert.deepEqual(consoleErrors, []);
});

test('a silence made through the API appears on the open page, the alert shown as silenced by it', async () => {
  const res = await fetch(`${base}/api/alerts/silences`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_TOKEN}` },
    body: JSON.stringify({ service: SERVICE, comment: 'maintenance window', durationSec: 600 }),
  });
  assert.equal(res.status, 201);
  const made = (await res.json()) as Wire<SilenceDoc>;
  const row = silences().getByRole('row').filter({ hasText: 'maintenance window' });
  await row.waitFor({ timeout: 30_000 });
  assert.match((await row.textContent()) ?? '', /^calc \/ all rules/);
  await alertRow(`[data-silenced="${made.silenceId}"]`).waitFor({ timeout: 30_000 });
  await page.locator('#event-list li[data-kind="ALERT_SILENCED"]').filter({ hasText: 'calc / all rules until' }).waitFor({ timeout: 30_000 });
  assert.deepEqual(consoleErrors, []);
});
