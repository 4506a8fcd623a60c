/**
 * The sample services, end to end: copy each into a scratch folder inside the repository (so Node's
 * module resolution and `npm run`'s PATH reach the root node_modules, as they will for a staged
 * version under .mcpship/), run the lint / test / build steps its mcp.json declares, start the built
 * server the way `start` says, and talk to it with the SDK's real MCP client.
 */
import assert from 'node:assert/strict';
import { appendFile, cp, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport, getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { execa, type ResultPromise } from 'execa';
import { loadManifest, STEP_NAMES, type Manifest, type Step } from '../../core/manifest.ts';
import { childEnv } from '../support/child-env.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SAMPLES = path.join(ROOT, 'examples/services');
const SCRATCH = path.join(ROOT, '.mcpship/tmp-test');
/** A guard against a hung step or server, never a timing assertion. */
const GUARD = { timeout: 180_000 };

let workDir = '';

before(async () => {
  await mkdir(SCRATCH, { recursive: true });
  workDir = await mkdtemp(path.join(SCRATCH, 'sample-services-'));
});

after(async () => {
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

/** Copies a sample without its node_modules or dist, as the watcher would snapshot it. */
async function copySample(name: string, as = name): Promise<string> {
  const dest = path.join(workDir, as);
  await cp(path.join(SAMPLES, name), dest, {
    recursive: true,
    filter: (src) => !['node_modules', 'dist'].includes(path.basename(src)),
  });
  return dest;
}

/** A copy of a sample and its manifest, checked to be of the transport the tests expect. */
async function sampleWithManifest(name: string, transport: Manifest['transport']): Promise<{ dir: string; manifest: Manifest }> {
  const dir = await copySample(name);
  const manifest = await loadManifest(dir);
  assert.equal(manifest.transport, transport);
  assert.equal(manifest.install, null, 'inside the repository the sample needs no install of its own');
  return { dir, manifest };
}

/** Every sample suite's first test; `sample` is read when it runs, after the suite's before(). */
function testLintAndTestPass(sample: () => { dir: string; manifest: Manifest }): void {
  test('lint and test steps pass', async () => {
    const { dir, manifest } = sample();
    await assertStepPasses(dir, manifest, 'lint');
    const output = await assertStepPasses(dir, manifest, 'test');
    assert.match(output, /# fail 0/);
  });
}

/** Runs a manifest step the way mcpship does: a shell command line in the service folder, with its timeout. */
async function runStep(dir: string, step: Step): Promise<{ exitCode: number | undefined; output: string }> {
  const result = await execa(step.run, {
    shell: true,
    cwd: dir,
    env: childEnv(),
    extendEnv: false,
    timeout: step.timeoutSec * 1000,
    reject: false,
    all: true,
    stdin: 'ignore',
  });
  return { exitCode: result.exitCode, output: result.all ?? '' };
}

async function assertStepPasses(dir: string, manifest: Manifest, name: (typeof STEP_NAMES)[number]): Promise<string> {
  const { exitCode, output } = await runStep(dir, manifest.steps[name]);
  assert.equal(exitCode, 0, `${manifest.name} ${name} step failed:\n${output}`);
  return output;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (address && typeof address === 'object' ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

function text(result: Awaited<ReturnType<Client['callTool']>>): string {
  const content = result.content as { type: string; text?: string }[];
  assert.equal(content.length, 1);
  assert.equal(content[0]!.type, 'text');
  return content[0]!.text ?? '';
}

describe('hello-world (stdio)', GUARD, () => {
  let dir = '';
  let manifest: Manifest;
  let client: Client | undefined;
  let transport: StdioClientTransport | undefined;

  before(async () => {
    ({ dir, manifest } = await sampleWithManifest('hello-world', 'stdio'));
  });

  after(async () => {
    await client?.close();
    const pid = transport?.pid;
    if (pid) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });

  testLintAndTestPass(() => ({ dir, manifest }));

  test('build step produces what start runs', async () => {
    await assertStepPasses(dir, manifest, 'build');
    for (const arg of manifest.start.args.filter((a) => a.endsWith('.js'))) {
      assert.ok((await stat(path.join(dir, arg))).isFile(), `${arg} was built`);
    }
  });

  test('a real MCP client over stdio lists and calls the tools', async () => {
    transport = new StdioClientTransport({
      command: manifest.start.command,
      args: manifest.start.args,
      cwd: dir,
      env: { ...getDefaultEnvironment(), ...manifest.start.env },
      stderr: 'pipe',
    });
    client = new Client({ name: 'mcpship-test', version: '0.0.0' });
    await client.connect(transport);
    assert.deepEqual(client.getServerVersion(), { name: 'hello-world', version: '1.0.0' });

    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), ['echo', 'hello']);
    const hello = tools.find((t) => t.name === 'hello');
    assert.deepEqual(hello?.inputSchema.required, ['name']);

    assert.equal(text(await client.callTool({ name: 'hello', arguments: { name: 'Ada' } })), 'Hello, Ada!');
    assert.equal(text(await client.callTool({ name: 'echo', arguments: { text: 'ping ✓' } })), 'ping ✓');
    const bad = await client.callTool({ name: 'hello', arguments: { name: 42 } });
    assert.equal(bad.isError, true);
  });
});

describe('calculator (Streamable HTTP)', GUARD, () => {
  let dir = '';
  let manifest: Manifest;
  let server: ResultPromise | undefined;
  let client: Client | undefined;
  let url = '';

  before(async () => {
    ({ dir, manifest } = await sampleWithManifest('calculator', 'http'));
  });

  after(async () => {
    await client?.close().catch(() => {});
    if (server && server.exitCode === null && !server.killed) server.kill('SIGKILL');
    await server?.catch(() => {});
  });

  testLintAndTestPass(() => ({ dir, manifest }));

  test('build step produces what start runs', async () => {
    await assertStepPasses(dir, manifest, 'build');
    assert.ok((await stat(path.join(dir, 'dist/index.js'))).isFile());
  });

  test('started with PORT, it serves a real MCP client over Streamable HTTP', async () => {
    assert.ok(manifest.transport === 'http');
    const mcpPath = manifest.http.path;
    const port = await freePort();
    url = `http://127.0.0.1:${port}${mcpPath}`;
    server = execa(manifest.start.command, manifest.start.args, {
      cwd: dir,
      env: { ...manifest.start.env, PORT: String(port) },
      reject: false,
      stdin: 'ignore',
      all: true,
    });
    // Ready when the endpoint answers HTTP at all (a GET without a session is a 400).
    for (;;) {
      assert.equal(server.exitCode, null, 'the server exited before it was ready');
      const status = await fetch(url, { headers: { accept: 'text/event-stream' } }).then(
        (res) => res.status,
        () => undefined,
      );
      if (status !== undefined) {
        assert.equal(status, 400);
        break;
      }
      await sleep(100);
    }

    const transport = new StreamableHTTPClientTransport(new URL(url));
    client = new Client({ name: 'mcpship-test', version: '0.0.0' });
    await client.connect(transport);
    assert.ok(transport.sessionId, 'the server assigned an Mcp-Session-Id');
    assert.deepEqual(client.getServerVersion(), { name: 'calculator', version: '1.0.0' });

    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), ['add', 'divide', 'multiply', 'subtract']);

    const add = await client.callTool({ name: 'add', arguments: { a: 2, b: 3 } });
    assert.equal(text(add), '5');
    assert.deepEqual(add.structuredContent, { result: 5 });
    assert.equal(text(await client.callTool({ name: 'subtract', arguments: { a: 2, b: 3 } })), '-1');
    assert.equal(text(await client.callTool({ name: 'multiply', arguments: { a: 6, b: 7 } })), '42');
    assert.equal(text(await client.callTool({ name: 'divide', arguments: { a: 7, b: 2 } })), '3.5');

    const byZero = await client.callTool({ name: 'divide', arguments: { a: 1, b: 0 } });
    assert.equal(byZero.isError, true);
    assert.equal(text(byZero), 'Division by zero');

    // DELETE ends the session; the old id then gets 404, the spec's cue to re-initialize.
    const sessionId = transport.sessionId;
    await transport.terminateSession();
    const stale = await fetch(url, { method: 'GET', headers: { accept: 'text/event-stream', 'mcp-session-id': sessionId } });
    assert.equal(stale.status, 404);
    await client.close();
    client = undefined;

    // A foreign Host header is refused (DNS rebinding protection).
    const { status: hostStatus } = await new Promise<{ status: number | undefined }>((resolve, reject) => {
      const req = net.connect(port, '127.0.0.1');
      let head = '';
      req.on('data', (chunk) => {
        head += chunk.toString();
        const match = /^HTTP\/1\.1 (\d{3})/.exec(head);
        if (match) {
          resolve({ status: Number(match[1]) });
          req.destroy();
        }
      });
      req.on('error', reject);
      req.write(`GET ${mcpPath} HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n`);
    });
    assert.equal(hostStatus, 403);

    // SIGTERM shuts it down cleanly.
    server.kill('SIGTERM');
    const result = await server;
    assert.equal(result.exitCode, 0, String(result.all));
  });
});

describe('broken copies fail their steps', GUARD, () => {
  test('a type error fails hello-world lint', async () => {
    const dir = await copySample('hello-world', 'hello-world-broken');
    await appendFile(path.join(dir, 'src/server.js'), '\nexport const broken = greet(42);\n');
    const { exitCode, output } = await runStep(dir, (await loadManifest(dir)).steps.lint);
    assert.notEqual(exitCode, 0);
    assert.match(output, /src\/server\.js\(\d+,\d+\): error TS2345/);
  });

  test('an unused variable fails calculator lint', async () => {
    const dir = await copySample('calculator', 'calculator-broken-lint');
    const file = path.join(dir, 'src/index.js');
    await writeFile(file, (await readFile(file, 'utf8')).replace("import { createApp } from './http.js';", "import { createApp } from './http.js';\nconst unused = 1;"));
    const { exitCode, output } = await runStep(dir, (await loadManifest(dir)).steps.lint);
    assert.notEqual(exitCode, 0);
    assert.match(output, /error TS6133: 'unused' is declared/);
  });

  test('a wrong operation fails calculator test', async () => {
    const dir = await copySample('calculator', 'calculator-broken-test');
    const file = path.join(dir, 'src/server.js');
    const source = await readFile(file, 'utf8');
    assert.ok(source.includes('fn: (a, b) => a + b'));
    await writeFile(file, source.replace('fn: (a, b) => a + b', 'fn: (a, b) => a - b'));
    const manifest = await loadManifest(dir);
    assert.equal((await runStep(dir, manifest.steps.lint)).exitCode, 0, 'still type-correct');
    const { exitCode, output } = await runStep(dir, manifest.steps.test);
    assert.notEqual(exitCode, 0);
    assert.match(output, /# fail [1-9]/);
  });
});
