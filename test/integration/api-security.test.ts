/**
 * CSRF and DNS rebinding against the real API (startApi on the test stack's MongoDB and Temporal),
 * with raw HTTP requests, since a test must be able to send the Host and Origin a hostile page makes
 * a browser send: foreign hosts and origins are refused on state changes and on reads (the event
 * stream included), state changes need application/json, the server's own origins pass on /api and
 * /mcp, a wildcard bind needs a strong token, and the event stream has a subscriber cap.
 */
import assert from 'node:assert/strict';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { execa } from 'execa';
import { UnsafeBindError } from '../../api/admin-auth.ts';
import { startApi, type ApiDeps, type ApiHandle } from '../../api/server.ts';
import { adminTokenFile } from '../../core/admin-token.ts';
import type { Config } from '../../core/config.ts';
import type { VersionDoc } from '../../core/documents.ts';
import { EventStore } from '../../core/events.ts';
import { createLogger } from '../../core/log.ts';
import { connectStore, ensureIndexes, type Store } from '../../core/mongo.ts';
import { repoRoot } from '../../stack/binaries.ts';
import { freePort } from '../../stack/ports.ts';
import { stackAddresses, testConfig } from '../support/stack-env.ts';
import { waitFor } from '../support/wait.ts';

const SERVICE = 'sec';
const EVIL_HOST = 'evil.example.com';
const EVIL_ORIGIN = 'http://evil.example.com';
const STRONG_TOKEN = 'Kq8vN2xR7tLm4pW9sZ3cB6yH1dF5gJ0aE-uQ_iT';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: any;
}

/**
 * One raw request to 127.0.0.1:port; `host` replaces the Host header, as a rebinding page's would.
 * An event stream is read until its first bytes arrive, then closed.
 */
function request(port: number, method: string, pathname: string, opts: { host?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: pathname, headers: { host: opts.host ?? `127.0.0.1:${port}`, ...opts.headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        if (String(res.headers['content-type']).startsWith('text/event-stream')) req.destroy();
      });
      const done = () => resolve({ status: res.statusCode!, headers: res.headers, body: parse(text) });
      res.on('end', done);
      res.on('close', done);
    });
    req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
    req.end(opts.body);
  });
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

const JSON_TYPE = { 'content-type': 'application/json' };
let store: Store;
let connection: Connection;
let temporal: Client;
const handles: ApiHandle[] = [];

async function deps(config: Config): Promise<ApiDeps> {
  return { config, store, events: new EventStore(store), log: createLogger('warn'), temporal, temporalAddress: stackAddresses().temporalAddress };
}

/** A staged version with real files, so that an archive that gets through really archives. */
async function stageVersion(config: Config, version: string): Promise<void> {
  const stagedDir = path.join(config.stateDir, 'staged', SERVICE, version);
  await mkdir(stagedDir, { recursive: true });
  await writeFile(path.join(stagedDir, 'index.js'), 'console.log("hi")\n');
  const now = new Date();
  const doc: VersionDoc = { service: SERVICE, version, state: 'STAGED', hash: `h-${version}`, files: ['index.js'], stagedDir, steps: [], tools: {}, createdAt: now, updatedAt: now, history: [{ state: 'STAGED', at: now }] };
  await store.versions.insertOne(doc);
}

async function stateOf(version: string): Promise<string | undefined> {
  return (await store.versions.findOne({ service: SERVICE, version }))?.state;
}

async function start(env: Record<string, string> = {}): Promise<{ api: ApiHandle; port: number; config: Config }> {
  const port = await freePort();
  const config = testConfig({ MCPSHIP_API_PORT: String(port), ...env });
  const api = await startApi(await deps(config));
  handles.push(api);
  return { api, port, config };
}

before(async () => {
  const { mongoUri, temporalAddress } = stackAddresses();
  const config = testConfig();
  store = await connectStore(mongoUri, config.mongo.database);
  await ensureIndexes(store);
  connection = await Connection.connect({ address: temporalAddress });
  temporal = new Client({ connection, namespace: config.temporal.namespace });
});

after(async () => {
  for (const api of handles) await api.close();
  await connection.close();
  await store.close();
});

describe('loopback bind, no token (the npm start default)', () => {
  let port: number;
  let config: Config;
  before(async () => {
    ({ port, config } = await start());
    for (const v of ['1.0.0', '1.0.1', '1.0.2', '1.0.3', '1.0.4']) await stageVersion(config, v);
  });

  test('a foreign Host cannot archive (DNS rebinding)', async () => {
    const res = await request(port, 'POST', `/api/services/${SERVICE}/versions/1.0.0/archive`, { host: `${EVIL_HOST}:${port}`, headers: JSON_TYPE, body: '{}' });
    assert.equal(res.status, 403);
    assert.equal(res.body.error.code, 'forbidden');
    assert.match(res.body.error.message, /host "evil\.example\.com:\d+" is not allowed/);
    assert.equal(await stateOf('1.0.0'), 'STAGED');
  });

  test('a foreign Origin cannot pause, archive or read the event stream (CSRF)', async () => {
    const pause = await request(port, 'POST', `/api/services/${SERVICE}/pause`, { headers: { ...JSON_TYPE, origin: EVIL_ORIGIN }, body: '{}' });
    assert.equal(pause.status, 403);
    assert.match(pause.body.error.message, /origin "http:\/\/evil\.example\.com" is not allowed/);
    const archive = await request(port, 'POST', `/api/services/${SERVICE}/versions/1.0.0/archive`, { headers: { ...JSON_TYPE, origin: EVIL_ORIGIN }, body: '{}' });
    assert.equal(archive.status, 403);
    assert.equal(await stateOf('1.0.0'), 'STAGED');
    const stream = await request(port, 'GET', '/api/events/stream', { headers: { origin: EVIL_ORIGIN, accept: 'text/event-stream' } });
    assert.equal(stream.status, 403);
    const rebound = await request(port, 'GET', '/api/events/stream', { host: `${EVIL_HOST}:${port}`, headers: { accept: 'text/event-stream' } });
    assert.equal(rebound.status, 403);
    assert.equal((await request(port, 'GET', `/api/services/${SERVICE}/versions`, { host: EVIL_HOST })).status, 403, 'reads are guarded too');
  });

  test('a form or a no-CORS text POST gets 415 and changes nothing', async () => {
    const form = await request(port, 'POST', `/api/services/${SERVICE}/versions/1.0.0/archive`, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1' });
    assert.equal(form.status, 415);
    assert.equal(form.body.error.code, 'unsupported_media_type');
    assert.match(form.body.error.message, /Content-Type: application\/json/);
    const text = await request(port, 'POST', `/api/services/${SERVICE}/pause`, { headers: { 'content-type': 'text/plain' }, body: '{}' });
    assert.equal(text.status, 415);
    const none = await request(port, 'POST', `/api/services/${SERVICE}/versions/1.0.0/archive`);
    assert.equal(none.status, 415);
    assert.equal(await stateOf('1.0.0'), 'STAGED');
  });

  test("the server's own loopback origins are allowed on /api", async () => {
    const own = [`http://127.0.0.1:${port}`, `http://localhost:${port}`, `http://[::1]:${port}`];
    for (const [i, origin] of own.entries()) {
      const version = `1.0.${i + 1}`;
      const res = await request(port, 'POST', `/api/services/${SERVICE}/versions/${version}/archive`, { headers: { ...JSON_TYPE, origin }, body: '{}' });
      assert.equal(res.status, 200, `${origin}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.state, 'ARCHIVED');
    }
    const stream = await request(port, 'GET', '/api/events/stream', { host: `localhost:${port}`, headers: { origin: `http://localhost:${port}`, accept: 'text/event-stream' } });
    assert.equal(stream.status, 200);
    // Another port on loopback is another origin (another local app).
    const other = await request(port, 'POST', `/api/services/${SERVICE}/versions/1.0.4/archive`, { headers: { ...JSON_TYPE, origin: 'http://localhost:3000' }, body: '{}' });
    assert.equal(other.status, 403);
    assert.equal(await stateOf('1.0.4'), 'STAGED');
  });

  test("the server's own origin is allowed on /mcp; a foreign one is not", async () => {
    const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } } });
    const headers = { ...JSON_TYPE, accept: 'application/json, text/event-stream' };
    for (const origin of [`http://127.0.0.1:${port}`, `http://localhost:${port}`, `http://[::1]:${port}`]) {
      const res = await request(port, 'POST', '/mcp/nothing-here', { headers: { ...headers, origin }, body: init });
      // Past the guard: the gateway answers for the (unknown) service itself.
      assert.notEqual(res.status, 403, `${origin}: ${JSON.stringify(res.body)}`);
      assert.doesNotMatch(JSON.stringify(res.body), /Forbidden/);
    }
    const foreign = await request(port, 'POST', '/mcp/nothing-here', { headers: { ...headers, origin: EVIL_ORIGIN }, body: init });
    assert.equal(foreign.status, 403);
    const rebound = await request(port, 'POST', '/mcp/nothing-here', { host: `${EVIL_HOST}:${port}`, headers, body: init });
    assert.equal(rebound.status, 403);
  });
});

describe('an origin on MCPSHIP_ALLOWED_ORIGINS', () => {
  test('gets CORS answers and may change state', async () => {
    const { port, config } = await start({ MCPSHIP_ALLOWED_ORIGINS: 'https://dash.example.org' });
    await stageVersion(config, '2.0.0');
    const preflight = await request(port, 'OPTIONS', `/api/services/${SERVICE}/versions/2.0.0/archive`, { headers: { origin: 'https://dash.example.org', 'access-control-request-method': 'POST' } });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers['access-control-allow-origin'], 'https://dash.example.org');
    assert.match(String(preflight.headers['access-control-allow-headers']), /Content-Type/);
    const res = await request(port, 'POST', `/api/services/${SERVICE}/versions/2.0.0/archive`, { headers: { ...JSON_TYPE, origin: 'https://dash.example.org' }, body: '{}' });
    assert.equal(res.status, 200);
  });
});

describe('bound beyond loopback', () => {
  test('no token: startApi and `mcpship api` refuse with a clear message', async () => {
    const config = testConfig({ MCPSHIP_API_HOST: '0.0.0.0', MCPSHIP_API_PORT: String(await freePort()) });
    await assert.rejects(startApi(await deps(config)), (err: Error) => {
      assert.ok(err instanceof UnsafeBindError);
      assert.match(err.message, /refusing to listen on 0\.0\.0\.0 without an admin token/);
      assert.match(err.message, /mcpship token/);
      return true;
    });
    const cli = await execa(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'cli', 'main.ts'), 'api'], {
      cwd: config.stateDir,
      reject: false,
      env: { PATH: process.env.PATH!, HOME: process.env.HOME!, MCPSHIP_API_HOST: '0.0.0.0', MCPSHIP_STATE_DIR: config.stateDir, TEMPORAL_ADDRESS: '127.0.0.1:1', MONGODB_URI: 'mongodb://127.0.0.1:1' },
      extendEnv: false,
    });
    assert.equal(cli.exitCode, 2, cli.stderr);
    assert.match(cli.stderr, /mcpship: refusing to listen on 0\.0\.0\.0 without an admin token/);
  });

  test('a default or short token is refused', async () => {
    for (const token of ['change-me-please', 'change-me-please-change-me-please-0123456789', 'a-short-token-1234']) {
      const config = testConfig({ MCPSHIP_API_HOST: '0.0.0.0', MCPSHIP_ADMIN_TOKEN: token, MCPSHIP_API_PORT: String(await freePort()) });
      await assert.rejects(startApi(await deps(config)), /refusing to listen on 0\.0\.0\.0 with a weak admin token/, token);
    }
  });

  test('`mcpship token` makes a 0600 token once; the API bound to 0.0.0.0 uses it, and Host stays checked', async () => {
    const config = testConfig({ MCPSHIP_API_HOST: '0.0.0.0', MCPSHIP_API_PORT: String(await freePort()), MCPSHIP_ALLOWED_HOSTS: 'mcpship.team.example' });
    const env = { PATH: process.env.PATH!, HOME: process.env.HOME!, MCPSHIP_STATE_DIR: config.stateDir };
    const tokenCli = () => execa(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'cli', 'main.ts'), 'token'], { cwd: config.stateDir, env, extendEnv: false });
    const first = await tokenCli();
    const token = first.stdout.trim();
    assert.match(token, /^[A-Za-z0-9_-]{43}$/);
    assert.equal((await stat(adminTokenFile(config.stateDir))).mode & 0o777, 0o600);
    const second = await tokenCli();
    assert.equal(second.stdout, '', 'the token is shown only once');
    assert.match(second.stderr, /already stored/);

    const api = await startApi(await deps(config));
    handles.push(api);
    const port = config.api.port;
    await stageVersion(config, '3.0.0');
    // Binding to every interface does not switch the Host check off.
    assert.equal((await request(port, 'GET', '/api/health', { host: `${EVIL_HOST}:${port}` })).status, 403);
    assert.equal((await request(port, 'GET', '/api/health', { host: `${EVIL_HOST}:${port}`, headers: { authorization: `Bearer ${token}` } })).status, 200);
    assert.equal((await request(port, 'GET', '/api/health', { host: `mcpship.team.example:${port}` })).status, 200);
    assert.equal((await request(port, 'GET', '/api/health', { host: `127.0.0.1:${port}` })).status, 200);
    const noToken = await request(port, 'POST', `/api/services/${SERVICE}/versions/3.0.0/archive`, { host: `mcpship.team.example:${port}`, headers: JSON_TYPE, body: '{}' });
    assert.equal(noToken.status, 401);
    const wrong = await request(port, 'POST', `/api/services/${SERVICE}/versions/3.0.0/archive`, { headers: { ...JSON_TYPE, authorization: `Bearer ${STRONG_TOKEN}` }, body: '{}' });
    assert.equal(wrong.status, 401);
    assert.equal(await stateOf('3.0.0'), 'STAGED');
    const ok = await request(port, 'POST', `/api/services/${SERVICE}/versions/3.0.0/archive`, { host: `mcpship.team.example:${port}`, headers: { ...JSON_TYPE, authorization: `Bearer ${token}`, origin: `http://mcpship.team.example:${port}` }, body: '{}' });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
  });

  test('a strong configured token is accepted', async () => {
    const { api } = await start({ MCPSHIP_API_HOST: '0.0.0.0', MCPSHIP_ADMIN_TOKEN: STRONG_TOKEN });
    assert.match(api.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  });
});

describe('event stream subscribers', () => {
  test('are capped (503 with the setting named), and a closed stream frees its place', async () => {
    const { port } = await start({ MCPSHIP_MAX_EVENT_STREAMS: '2' });
    const open: http.ClientRequest[] = [];
    const openStream = () =>
      new Promise<number>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port, path: '/api/events/stream', headers: { accept: 'text/event-stream' } }, (res) => {
          if (res.statusCode === 200) open.push(req);
          else res.resume();
          resolve(res.statusCode!);
        });
        req.on('error', reject);
      });
    assert.equal(await openStream(), 200);
    assert.equal(await openStream(), 200);
    const third = await request(port, 'GET', '/api/events/stream', { headers: { accept: 'text/event-stream' } });
    assert.equal(third.status, 503);
    assert.equal(third.headers['retry-after'], '5');
    assert.equal(third.body.error.code, 'too_many_streams');
    assert.match(third.body.error.message, /MCPSHIP_MAX_EVENT_STREAMS/);
    open.shift()!.destroy();
    await waitFor('a freed stream place', async () => (await openStream()) === 200);
    for (const req of open) req.destroy();
  });
});
