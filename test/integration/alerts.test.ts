/**
 * The alert manager on the real stack: the worker's evaluator turns the facts the gateway and the
 * workflows write (here a BREAKER_OPEN event, appended as api/gateway/on-breach.ts does) into an
 * alert that fires and resolves, notified to real local HTTP receivers through the Temporal
 * notification workflow, retried when a receiver fails.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { execa } from 'execa';
import { repoRoot } from '../../stack/binaries.ts';
import { startSystem, type System } from '../../cli/system.ts';
import { createLogger } from '../../core/log.ts';
import { freePort } from '../../stack/ports.ts';
import type { AlertDoc } from '../../alerts/types.ts';
import { testConfig } from '../support/stack-env.ts';
import { waitFor } from '../support/wait.ts';

interface Receiver {
  url: string;
  bodies: Record<string, any>[];
  /** Requests answered with 503 before the receiver starts accepting. */
  refuse: number;
  server: Server;
}

async function receiver(refuse = 0): Promise<Receiver> {
  const r: Receiver = { url: '', bodies: [], refuse, server: undefined as unknown as Server };
  r.server = createServer(async (req: IncomingMessage, res) => {
    let text = '';
    for await (const chunk of req) text += chunk;
    if (r.refuse > 0) {
      r.refuse -= 1;
      res.writeHead(503).end('busy');
      return;
    }
    r.bodies.push(JSON.parse(text));
    res.writeHead(200).end('ok');
  });
  await new Promise<void>((resolve) => r.server.listen(0, '127.0.0.1', resolve));
  r.url = `http://127.0.0.1:${(r.server.address() as AddressInfo).port}/hook`;
  return r;
}

let system: System;
let base: string;
let json: Receiver;
let slack: Receiver;

before(async () => {
  json = await receiver(1);
  slack = await receiver();
  const config = testConfig({
    MCPSHIP_API_PORT: String(await freePort()),
    MCPSHIP_ALERTS_INTERVAL_SEC: '1',
    MCPSHIP_ALERT_WEBHOOKS: `json=${json.url},slack=${slack.url}`,
  });
  // A per-service override: calc's breaker alerts hold 4 s after the event instead of 10 minutes.
  config.alerts.services = { calc: { breakerOpen: { holdSec: 4 } }, quiet: { breakerOpen: { holdSec: 4 } } };
  system = await startSystem(config, createLogger('warn'), { worker: true, api: true });
  base = system.api!.url;
});

after(async () => {
  await system?.stop();
  json?.server.close();
  slack?.server.close();
});

async function api<T = any>(pathname: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(`${base}${pathname}`, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (res.status === 204 ? {} : await res.json()) as T };
}

const alertOf = async (alertId: string) => (await api<{ alerts: AlertDoc[] }>('/api/alerts')).body.alerts.find((a) => a.alertId === alertId);

test('a breaker alert fires, both webhooks hear it (the refused one after a retry), then it resolves', async () => {
  const opened = await system.events.append({ service: 'calc', version: '2.0.0', kind: 'BREAKER_OPEN', status: 'failed', details: { reasons: ['error rate 60% > 20%'] } });

  const firing = await waitFor('the alert firing', async () => {
    const a = await alertOf('breakerOpen/calc/2.0.0');
    return a?.state === 'firing' ? a : undefined;
  }, 60_000, 200);
  assert.match(firing.summary, /BREAKER_OPEN calc@2\.0\.0: error rate 60% > 20%/);

  const generic = await waitFor('the generic webhook to hear the firing', () => json.bodies.find((b) => b.status === 'firing'), 120_000, 200);
  assert.equal(json.refuse, 0, 'the first attempt was refused, so this one is a retry');
  assert.equal(generic.schema, 'mcpship.alerts/v1');
  assert.equal(generic.service, 'calc');
  assert.deepEqual(generic.alerts.map((a: any) => `${a.alertId}:${a.state}`), ['breakerOpen/calc/2.0.0:firing']);
  const slackFiring = await waitFor('the Slack webhook to hear the firing', () => slack.bodies.find((b) => /^FIRING: calc/.test(b.text)), 60_000, 200);
  assert.ok(Array.isArray(slackFiring.blocks));

  // The evaluator runs every second; the same alert is never sent twice.
  await waitFor('the alert resolved (holdSec 4 after the event)', async () => (await alertOf('breakerOpen/calc/2.0.0'))?.state === 'resolved', 60_000, 200);
  const resolved = await waitFor('the generic webhook to hear the resolve', () => json.bodies.find((b) => b.status === 'resolved'), 120_000, 200);
  assert.equal(resolved.alerts[0].state, 'resolved');
  await waitFor('the Slack webhook to hear the resolve', () => slack.bodies.find((b) => /^RESOLVED: calc/.test(b.text)), 60_000, 200);
  assert.equal(json.bodies.filter((b) => b.status === 'firing').length, 1, 'one firing notification');

  const kinds = (await system.events.list({ service: 'calc', afterSeq: opened.seq, limit: 500 })).map((e) => e.kind);
  assert.deepEqual(kinds.filter((k) => k.startsWith('ALERT_')), ['ALERT_FIRING', 'ALERT_RESOLVED'], 'holdSec 4 with forSec 0: no pending step');
});

test('a silence keeps a matching alert from any webhook while it still shows in GET /api/alerts', async () => {
  assert.equal((await api('/api/alerts/silences', { service: 'quiet', comment: '' })).status, 400, 'a silence needs a comment and a duration');
  const refused = await fetch(`${base}/api/alerts/silences`, { method: 'POST', body: 'service=quiet' });
  assert.equal(refused.status, 415);
  // Made with the CLI, as a person would.
  const made = await execa(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'cli', 'main.ts'), 'silence', 'maintenance', 'window', '--service', 'quiet', '--for', '10', '--json', '--api', base], { cwd: repoRoot, env: { MCPSHIP_LOG_LEVEL: 'warn' } });
  const created = { body: JSON.parse(made.stdout) as { silenceId: string; comment: string; expiresAt: string } };
  assert.equal(created.body.comment, 'maintenance window');
  assert.ok((await api<{ silences: { silenceId: string }[] }>('/api/alerts')).body.silences.some((s) => s.silenceId === created.body.silenceId));

  const heardBefore = json.bodies.length;
  await system.events.append({ service: 'quiet', version: '1.0.0', kind: 'BREAKER_OPEN', status: 'failed', details: { reasons: ['latency'] } });
  const firing = await waitFor('the silenced alert firing', async () => {
    const a = await alertOf('breakerOpen/quiet/1.0.0');
    return a?.state === 'firing' && a.notified === 'firing' ? a : undefined;
  }, 60_000, 200);
  assert.equal(firing.silencedBy, created.body.silenceId);
  const listed = await execa(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'cli', 'main.ts'), 'alerts', '--service', 'quiet', '--api', base], { cwd: repoRoot, env: { MCPSHIP_LOG_LEVEL: 'warn' } });
  assert.match(listed.stdout, /^(FIRING|RESOLVED)\s+breakerOpen\/quiet\/1\.0\.0 .*\(silenced\)/m);
  assert.match(listed.stdout, /^silence .* quiet \/ all rules until .* maintenance window$/m);
  await waitFor('the silenced alert resolved', async () => (await alertOf('breakerOpen/quiet/1.0.0'))?.state === 'resolved', 60_000, 200);
  // A pass after the resolve has planned its notifications: still nothing for quiet.
  await new Promise((r) => setTimeout(r, 2_500));
  assert.deepEqual(json.bodies.slice(heardBefore).filter((b) => b.service === 'quiet'), []);
  assert.equal((await api(`/api/alerts?state=bogus`)).status, 400);
});
