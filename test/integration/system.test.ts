import assert from 'node:assert/strict';
import { cp, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { execa } from 'execa';
import type { EventDoc, VersionDoc } from '../../core/documents.ts';
import { createLogger } from '../../core/log.ts';
import { repoRoot } from '../../stack/binaries.ts';
import { freePort } from '../../stack/ports.ts';
import { startSystem, type System } from '../../cli/system.ts';
import { testConfig } from '../support/stack-env.ts';
import { waitFor } from '../support/wait.ts';

const TOKEN = 'test-admin-token-123';
let system: System;
let base: string;
let config: ReturnType<typeof testConfig>;

before(async () => {
  config = testConfig({ MCPSHIP_API_PORT: String(await freePort()), MCPSHIP_ADMIN_TOKEN: TOKEN, MCPSHIP_DEBOUNCE_MS: '100' });
  system = await startSystem(config, createLogger('warn'), { worker: true, api: true });
  base = system.api!.url;
});

after(async () => {
  await system.stop();
});

async function api<T = any>(pathname: string, init: RequestInit = {}): Promise<{ status: number; body: T }> {
  const res = await fetch(`${base}${pathname}`, init);
  return { status: res.status, body: (await res.json()) as T };
}

const cli = (...args: string[]) =>
  execa(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'cli', 'main.ts'), ...args, '--api', base], { cwd: repoRoot, env: { ...process.env, MCPSHIP_ADMIN_TOKEN: TOKEN } });

async function stagedVersion(service: string, version: string): Promise<VersionDoc> {
  return waitFor(`${service}@${version} staged`, async () => {
    const { status, body } = await api<VersionDoc>(`/api/services/${service}/versions/${version}`);
    return status === 200 ? body : undefined;
  }, 120_000, 250);
}

test('a file saved under the services root is noticed, validated and staged; the API and CLI show it', async () => {
  const dir = path.join(config.servicesDir, 'hello');
  await cp(path.join(repoRoot, 'examples', 'services', 'hello-world'), dir, { recursive: true, filter: (src) => !/node_modules|dist/.test(src) });
  const manifest = await readFile(path.join(dir, 'mcp.json'), 'utf8');
  await writeFile(path.join(dir, 'mcp.json'), JSON.stringify({ ...JSON.parse(manifest), name: 'hello', rollout: { autoDeploy: false } }, null, 2));
  const v1 = await stagedVersion('hello', '1.0.0');
  assert.equal(v1.state, 'STAGED');

  const service = await waitFor('the validation to be recorded', async () => {
    const { body } = await api(`/api/services/hello`);
    return body.lastValidation?.version === '1.0.0' ? body : undefined;
  });
  assert.equal(service.lastValidation.ok, true);
  assert.equal(service.workflowId, 'service/hello');
  assert.deepEqual(service.versions.map((v: VersionDoc) => v.version), ['1.0.0']);

  const status = await cli('status');
  assert.match(status.stdout, /hello\s+active=- canary=-\s+last validation: passed .* -> 1\.0\.0/);
  const versions = await cli('versions', 'hello');
  assert.match(versions.stdout, /1\.0\.0\s+STAGED/);
  const logs = await cli('logs', 'hello');
  assert.match(logs.stdout, /-- run service\/hello /);
  assert.match(logs.stdout, /hello\s+VALIDATING[\s\S]*LINT_COMPLETE[\s\S]*hello@1\.0\.0\s+STAGED/);

  // Follow: a second save shows up live.
  const follow = execa(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'cli', 'main.ts'), 'logs', 'hello', '--follow', '--api', base], { cwd: repoRoot, all: true, reject: false });
  let output = '';
  follow.all!.on('data', (c: Buffer) => (output += c.toString()));
  await waitFor('the follower to print the history', () => output.includes('hello@1.0.0  STAGED'));
  await writeFile(path.join(dir, 'src', 'extra.js'), 'export const extra = 2;\n');
  await waitFor('the follower to print the new version', () => output.includes('hello@1.0.1  STAGED'), 120_000).catch(async (err) => {
    const { body } = await api(`/api/events?service=hello&limit=500`);
    throw new Error(`${err.message}\nfollower printed:\n${output}\nevents: ${body.events.map((e: EventDoc) => e.kind).join(' ')}`);
  });
  follow.kill('SIGINT');
  await follow;
});

test('events: filter, pagination, bad parameters', async () => {
  const { body: all } = await api<{ events: EventDoc[] }>(`/api/events?service=hello&limit=500`);
  assert.ok(all.events.length > 5);
  assert.ok(all.events.every((e) => e.service === 'hello'));
  const seqs = all.events.map((e) => e.seq);
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));

  const { body: first } = await api(`/api/events?service=hello&limit=2`);
  assert.equal(first.events.length, 2);
  assert.equal(first.next, first.events[1].seq);
  const { body: second } = await api(`/api/events?service=hello&limit=2&after=${first.next}`);
  assert.deepEqual(second.events.map((e: EventDoc) => e.seq), seqs.slice(2, 4));

  const { body: staged } = await api(`/api/events?kind=STAGED`);
  assert.ok(staged.events.length >= 2 && staged.events.every((e: EventDoc) => e.kind === 'STAGED'));
  const { body: none } = await api(`/api/events?since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`);
  assert.deepEqual(none.events, []);

  for (const bad of ['limit=0', 'after=-1', 'since=yesterday', 'service=..%2F..']) {
    const { status, body } = await api(`/api/events?${bad}`);
    assert.equal(status, 400, bad);
    assert.equal(typeof body.error.message, 'string');
    assert.ok(!JSON.stringify(body).includes('    at '), 'no stack trace');
  }
});

test('the event stream resumes after Last-Event-ID', async () => {
  const { body } = await api<{ events: EventDoc[] }>(`/api/events?service=hello&limit=500`);
  const resumeAfter = body.events[2]!.seq;
  const abort = new AbortController();
  const res = await fetch(`${base}/api/events/stream?service=hello`, { headers: { 'last-event-id': String(resumeAfter) }, signal: abort.signal });
  assert.equal(res.headers.get('content-type'), 'text/event-stream');
  const reader = res.body!.getReader();
  let text = '';
  while (!text.includes(`id: ${body.events[4]!.seq}\n`)) text += new TextDecoder().decode((await reader.read()).value);
  abort.abort();
  const ids = [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
  assert.deepEqual(ids.slice(0, 2), [body.events[3]!.seq, body.events[4]!.seq]);
});

test('services API: bad names, unknown services, JSON error shape', async () => {
  assert.equal((await api('/api/services/..%2F..%2Fetc')).status, 400);
  assert.equal((await api('/api/services/Not_A_Name')).status, 400);
  const unknown = await api('/api/services/nope');
  assert.equal(unknown.status, 404);
  assert.deepEqual(Object.keys(unknown.body.error).sort(), ['code', 'message']);
  assert.equal((await api('/api/services/hello/versions/1.x')).status, 400);
  assert.equal((await api('/api/services/hello/versions/9.9.9')).status, 404);
  assert.equal((await api('/api/services/hello/versions?state=BOGUS')).status, 400);
  assert.equal((await api('/api/no-such-route')).status, 404);
});

test('archive and restore through the API, behind the admin token', async () => {
  const noToken = await api('/api/services/hello/versions/1.0.0/archive', { method: 'POST' });
  assert.equal(noToken.status, 401);
  const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };

  const archived = await api<VersionDoc>('/api/services/hello/versions/1.0.0/archive', { method: 'POST', headers: auth });
  assert.equal(archived.status, 200);
  assert.equal(archived.body.state, 'ARCHIVED');
  const archiveDir = path.join(config.stateDir, 'archive', 'hello', '1.0.0');
  assert.equal(archived.body.archiveDir, archiveDir);
  assert.equal((await stat(path.join(archiveDir, 'src', 'server.js'))).mode & 0o222, 0, 'archived files are read-only');
  assert.ok((await stat(path.join(archiveDir, 'metadata.json'))).isFile());

  const list = await api<{ versions: VersionDoc[] }>('/api/services/hello/versions?state=ARCHIVED');
  assert.deepEqual(list.body.versions.map((v) => v.version), ['1.0.0']);

  const again = await api('/api/services/hello/versions/1.0.0/archive', { method: 'POST', headers: auth });
  assert.equal(again.status, 200, 'archiving twice is a no-op');

  const restored = await api<VersionDoc>('/api/services/hello/versions/1.0.0/restore', { method: 'POST', headers: auth });
  assert.equal(restored.status, 200);
  assert.equal(restored.body.state, 'STAGED');
  const illegal = await api('/api/services/hello/versions/1.0.0/restore', { method: 'POST', headers: auth });
  assert.equal(illegal.status, 409, 'STAGED cannot be restored');
  assert.match(illegal.body.error.message, /cannot go from STAGED to STAGED|cannot go from STAGED/);
});
