import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rename, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { hashTree } from '../../core/tree-hash.ts';
import { retryDelayMs, ServiceWatcher, type ServiceChange, type ServiceWatcherOptions } from '../../watcher/service-watcher.ts';

const DEBOUNCE = 100;
/** Long enough for chokidar to deliver events and several debounce windows to pass. */
const QUIET = DEBOUNCE * 6;

const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function makeRoot(services: Record<string, Record<string, string>> = {}): Promise<string> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'mcpship-watcher-'));
  dirs.push(root);
  for (const [name, files] of Object.entries(services)) {
    for (const [file, text] of Object.entries(files)) await put(root, `${name}/${file}`, text);
  }
  return root;
}

async function put(root: string, rel: string, text: string): Promise<void> {
  const file = path.join(root, rel);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, text);
}

interface Harness {
  watcher: ServiceWatcher;
  changes: ServiceChange[];
  added: string[];
  removed: string[];
  logLines: Array<{ level: number; msg: string; folder?: string }>;
  changesOf(service: string): ServiceChange[];
}

async function start(root: string, extra: Partial<ServiceWatcherOptions> = {}): Promise<Harness> {
  const changes: ServiceChange[] = [];
  const added: string[] = [];
  const removed: string[] = [];
  const logLines: Harness['logLines'] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) logLines.push(JSON.parse(line));
      done();
    },
  });
  const watcher = new ServiceWatcher({
    root,
    debounceMs: DEBOUNCE,
    log: pino({ level: 'warn' }, sink),
    onChange: (c) => void changes.push(c),
    onServiceAdded: (n) => void added.push(n),
    onServiceRemoved: (n) => void removed.push(n),
    ...extra,
  });
  await watcher.ready();
  return { watcher, changes, added, removed, logLines, changesOf: (s) => changes.filter((c) => c.service === s) };
}

async function waitFor(what: string, predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function hashOf(root: string, service: string): Promise<string> {
  return (await hashTree(path.join(root, service))).hash;
}

test('existing services are reported at start, before ready() resolves', async () => {
  const root = await makeRoot({ calc: { 'index.ts': 'a', 'src/tool.ts': 'b' }, hello: { 'index.ts': 'h' } });
  const h = await start(root);
  try {
    assert.deepEqual([...h.added].sort(), ['calc', 'hello']);
    assert.equal(h.changes.length, 2);
    const calc = h.changesOf('calc')[0]!;
    assert.equal(calc.hash, await hashOf(root, 'calc'));
    assert.deepEqual(calc.changedPaths, ['index.ts', 'src/tool.ts']);
    assert.ok(!Number.isNaN(Date.parse(calc.at)));
  } finally {
    await h.watcher.close();
  }
});

test('a save gives one change with the tree hash and the changed paths', async () => {
  const root = await makeRoot({ calc: { 'index.ts': 'a', 'src/tool.ts': 'b', 'README.md': 'r' } });
  const h = await start(root);
  try {
    await put(root, 'calc/src/tool.ts', 'b2');
    await waitFor('the change', () => h.changes.length === 2);
    const change = h.changes[1]!;
    assert.equal(change.service, 'calc');
    assert.equal(change.hash, await hashOf(root, 'calc'));
    assert.deepEqual(change.changedPaths, ['src/tool.ts']);
    await sleep(QUIET);
    assert.equal(h.changes.length, 2);
  } finally {
    await h.watcher.close();
  }
});

test('five quick saves within the debounce give exactly one change, covering them all, with the newest content', async () => {
  const root = await makeRoot({ calc: { 'index.ts': 'v0' } });
  // A wide window, and each save is awaited until the watcher has seen it, not timed: the next
  // save follows as soon as the previous one is pending, however slow the machine.
  const h = await start(root, { debounceMs: 1000 });
  try {
    const saved: string[] = [];
    for (let i = 1; i <= 5; i++) {
      const file = i === 5 ? 'index.ts' : `part${i}.ts`;
      await put(root, `calc/${file}`, `v${i}`);
      saved.push(file);
      await waitFor(`save ${i} to be pending`, () => h.watcher.pending('calc').includes(file));
      assert.equal(h.changes.length, 1, `save ${i} did not end the debounce of the ones before it`);
    }
    await waitFor('the change', () => h.changes.length === 2);
    assert.deepEqual(h.watcher.pending('calc'), []);
    assert.equal(h.changes[1]!.hash, await hashOf(root, 'calc'));
    assert.deepEqual(h.changes[1]!.changedPaths, saved.sort());
    await sleep(2 * 1000);
    assert.equal(h.changes.length, 2);
  } finally {
    await h.watcher.close();
  }
});

test('rewriting identical bytes or touching mtime starts nothing', async () => {
  const root = await makeRoot({ calc: { 'index.ts': 'same', 'other.ts': 'o' } });
  const h = await start(root);
  try {
    await put(root, 'calc/index.ts', 'same');
    const later = new Date(Date.now() + 60_000);
    await utimes(path.join(root, 'calc/other.ts'), later, later);
    await sleep(QUIET);
    assert.equal(h.changes.length, 1);
    // The suppressed paths are not carried into the next real change.
    await put(root, 'calc/other.ts', 'o2');
    await waitFor('the real change', () => h.changes.length === 2);
    assert.deepEqual(h.changes[1]!.changedPaths, ['other.ts']);
  } finally {
    await h.watcher.close();
  }
});

test('node_modules, build output and editor temp files start nothing', async () => {
  const root = await makeRoot({ calc: { 'index.ts': 'a', 'node_modules/dep/index.js': 'x' } });
  const h = await start(root);
  try {
    await put(root, 'calc/node_modules/dep/index.js', 'changed');
    await put(root, 'calc/node_modules/new-dep/index.js', 'new');
    await put(root, 'calc/dist/index.js', 'built');
    await put(root, 'calc/.index.ts.swp', 'swap');
    await put(root, 'calc/index.ts~', 'backup');
    await put(root, 'calc/4913', 'vim probe');
    await sleep(QUIET);
    assert.equal(h.changes.length, 1);
    await put(root, 'calc/index.ts', 'b');
    await waitFor('the real change', () => h.changes.length === 2);
    assert.deepEqual(h.changes[1]!.changedPaths, ['index.ts']);
  } finally {
    await h.watcher.close();
  }
});

test('write-temp-then-rename saves give exactly one change', async () => {
  const root = await makeRoot({ calc: { 'index.ts': 'a' } });
  const h = await start(root);
  try {
    await put(root, 'calc/index.ts.tmp', 'b');
    await rename(path.join(root, 'calc/index.ts.tmp'), path.join(root, 'calc/index.ts'));
    // An editor pattern whose temp name tree-hash does not know: it must not show in the paths.
    await put(root, 'calc/index.ts___jb_tmp___', 'c');
    await rename(path.join(root, 'calc/index.ts___jb_tmp___'), path.join(root, 'calc/index.ts'));
    await waitFor('the change', () => h.changes.length === 2);
    await sleep(QUIET);
    assert.equal(h.changes.length, 2);
    assert.equal(h.changes[1]!.hash, await hashOf(root, 'calc'));
    assert.deepEqual(h.changes[1]!.changedPaths, ['index.ts']);
  } finally {
    await h.watcher.close();
  }
});

test('two services changed at once give one change each', async () => {
  const root = await makeRoot({ calc: { 'index.ts': 'a' }, hello: { 'index.ts': 'h' } });
  const h = await start(root);
  try {
    await Promise.all([put(root, 'calc/index.ts', 'a2'), put(root, 'hello/index.ts', 'h2')]);
    await waitFor('both changes', () => h.changes.length === 4);
    await sleep(QUIET);
    assert.equal(h.changesOf('calc').length, 2);
    assert.equal(h.changesOf('hello').length, 2);
    assert.equal(h.changesOf('calc')[1]!.hash, await hashOf(root, 'calc'));
    assert.equal(h.changesOf('hello')[1]!.hash, await hashOf(root, 'hello'));
  } finally {
    await h.watcher.close();
  }
});

test('a new service folder is added and reported; a removed one is removed', async () => {
  const root = await makeRoot({ calc: { 'index.ts': 'a' } });
  const h = await start(root);
  try {
    await put(root, 'weather/index.ts', 'w');
    await put(root, 'weather/package.json', '{}');
    await waitFor('the new service', () => h.changesOf('weather').length === 1);
    assert.deepEqual(h.added, ['calc', 'weather']);
    const change = h.changesOf('weather')[0]!;
    assert.equal(change.hash, await hashOf(root, 'weather'));
    assert.deepEqual(change.changedPaths, ['index.ts', 'package.json']);

    await put(root, 'calc/index.ts', 'edited just before removal');
    await rm(path.join(root, 'calc'), { recursive: true, force: true });
    await waitFor('the removal', () => h.removed.length === 1);
    assert.deepEqual(h.removed, ['calc']);
    await sleep(QUIET);
    assert.deepEqual(h.added, ['calc', 'weather'], 'late file events must not bring a removed service back');
    assert.equal(h.changesOf('calc').length, 1, 'the pending change of a removed service is cancelled');
  } finally {
    await h.watcher.close();
  }
});

test('knownHashes suppresses the initial change of an unchanged service', async () => {
  const root = await makeRoot({ calc: { 'index.ts': 'a' }, hello: { 'index.ts': 'h' } });
  const knownHashes = new Map([
    ['calc', await hashOf(root, 'calc')],
    ['hello', 'an older hash'],
  ]);
  const h = await start(root, { knownHashes });
  try {
    assert.deepEqual([...h.added].sort(), ['calc', 'hello']);
    assert.deepEqual(
      h.changes.map((c) => c.service),
      ['hello'],
    );
    await put(root, 'calc/index.ts', 'a2');
    await waitFor('the change', () => h.changesOf('calc').length === 1);
    assert.deepEqual(h.changesOf('calc')[0]!.changedPaths, ['index.ts'], 'only the edited file, not the whole tree');
  } finally {
    await h.watcher.close();
  }
});

test('a folder whose name is not a service name is skipped with a warning', async () => {
  const root = await makeRoot({ Bad_Name: { 'index.ts': 'x' }, calc: { 'index.ts': 'a' } });
  const h = await start(root);
  try {
    assert.deepEqual(h.added, ['calc']);
    assert.deepEqual(
      h.changes.map((c) => c.service),
      ['calc'],
    );
    const warning = h.logLines.find((l) => l.folder === 'Bad_Name');
    assert.ok(warning, 'a warning names the folder');
    assert.equal(warning.level, 40);

    await put(root, 'Bad_Name/index.ts', 'y');
    await put(root, 'Also Bad/index.ts', 'z');
    await sleep(QUIET);
    assert.deepEqual(h.added, ['calc']);
    assert.equal(h.changes.length, 1);
    assert.ok(h.logLines.some((l) => l.folder === 'Also Bad'));
  } finally {
    await h.watcher.close();
  }
});

test('close() cancels pending changes: no callback after it', async () => {
  const root = await makeRoot({ calc: { 'index.ts': 'a' } });
  // A debounce long enough that the change is surely still pending when close() is called.
  const h = await start(root, { debounceMs: 1000 });
  await put(root, 'calc/index.ts', 'b');
  await waitFor('the save to be pending', () => h.watcher.pending('calc').includes('index.ts'));
  await h.watcher.close();
  assert.deepEqual(h.watcher.pending('calc'), []);
  await sleep(2 * 1000);
  assert.equal(h.changes.length, 1);
});

/** A receiver that rejects every change while `down`, like signalWithStart while Temporal is away. */
function flakyReceiver() {
  const r = {
    down: false,
    attempts: [] as Array<{ change: ServiceChange; time: number }>,
    delivered: [] as ServiceChange[],
    onChange: (change: ServiceChange) => {
      r.attempts.push({ change, time: performance.now() });
      if (r.down) throw new Error('Temporal unreachable');
      r.delivered.push(change);
    },
  };
  return r;
}

const RETRY = { firstMs: 50, maxMs: 200 };
const undeliveredErrors = (h: Harness) => h.logLines.filter((l) => l.msg.startsWith('change could not be delivered'));

test('the retry waits double each time, up to the cap', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 40].map((n) => retryDelayMs(n, RETRY)), [50, 100, 200, 200, 200, 200]);
});

/**
 * Runs `body` with the receiver down and calc/index.ts saved as 'b' (content 'a' was delivered at
 * start), once the first attempt to deliver that save has failed.
 */
async function duringOutage(body: (o: { root: string; receiver: ReturnType<typeof flakyReceiver>; h: Harness }) => Promise<void>): Promise<void> {
  const root = await makeRoot({ calc: { 'index.ts': 'a' } });
  const receiver = flakyReceiver();
  const h = await start(root, { onChange: receiver.onChange, retry: RETRY });
  try {
    receiver.down = true;
    await put(root, 'calc/index.ts', 'b');
    await waitFor('a failed attempt', () => receiver.attempts.length >= 2);
    await body({ root, receiver, h });
  } finally {
    await h.watcher.close();
  }
}

test('an undelivered change is retried with backoff until delivered, without another save, and logged once', () =>
  duringOutage(async ({ root, receiver, h }) => {
    await waitFor('five failed attempts', () => receiver.attempts.length >= 6);
    assert.deepEqual(h.watcher.pending('calc'), ['index.ts'], 'the undelivered change is pending');
    const failed = receiver.attempts.slice(1);
    assert.ok(failed.every((a) => a.change.hash === failed[0]!.change.hash && a.change.at === failed[0]!.change.at));
    for (let i = 1; i < failed.length; i++) {
      // Timers may fire a little late under load, never a whole millisecond early.
      const gap = failed[i]!.time - failed[i - 1]!.time;
      assert.ok(gap >= retryDelayMs(i, RETRY) - 1, `attempt ${i + 1} came ${gap.toFixed(0)} ms after the one before`);
    }
    assert.equal(undeliveredErrors(h).length, 1, 'one error for the outage, not one per attempt');

    receiver.down = false;
    await waitFor('the delivery', () => receiver.delivered.length === 2);
    const change = receiver.delivered[1]!;
    assert.equal(change.hash, await hashOf(root, 'calc'));
    assert.deepEqual(change.changedPaths, ['index.ts']);
    assert.equal(change.at, failed[0]!.change.at, 'the time of the save, not of the attempt');
    assert.deepEqual(h.watcher.pending('calc'), []);
    const attempts = receiver.attempts.length;
    await sleep(QUIET);
    assert.equal(receiver.attempts.length, attempts, 'no attempt after the delivery');
    assert.equal(undeliveredErrors(h).length, 1);
  }));

test('a newer save supersedes the undelivered one: only the newest content is delivered, with both paths', () =>
  duringOutage(async ({ root, receiver, h }) => {
    const older = receiver.attempts[1]!.change.hash;
    await put(root, 'calc/extra.ts', 'c');
    const newest = await hashOf(root, 'calc');
    await waitFor('an attempt with the newer content', () => receiver.attempts.some((a) => a.change.hash === newest));
    const firstNewer = receiver.attempts.findIndex((a) => a.change.hash === newest);
    await waitFor('two more attempts', () => receiver.attempts.length >= firstNewer + 3);
    assert.ok(receiver.attempts.slice(firstNewer).every((a) => a.change.hash !== older), 'the older content is not retried any more');
    assert.deepEqual(h.watcher.pending('calc'), ['extra.ts', 'index.ts']);
    assert.equal(undeliveredErrors(h).length, 1, 'still one outage');

    receiver.down = false;
    await waitFor('the delivery', () => receiver.delivered.length === 2);
    assert.equal(receiver.delivered[1]!.hash, newest);
    assert.deepEqual(receiver.delivered[1]!.changedPaths, ['extra.ts', 'index.ts']);
    await sleep(QUIET);
    assert.equal(receiver.delivered.length, 2);
  }));

test('a save back to the delivered content ends the retry: nothing is missing', () =>
  duringOutage(async ({ root, receiver, h }) => {
    await put(root, 'calc/index.ts', 'a');
    await waitFor('the retry to end', () => h.watcher.pending('calc').length === 0);
    const attempts = receiver.attempts.length;
    receiver.down = false;
    await sleep(QUIET);
    assert.equal(receiver.attempts.length, attempts);
    assert.equal(receiver.delivered.length, 1);
  }));

test('close() ends the retry of an undelivered change, with a warning that names it', () =>
  duringOutage(async ({ receiver, h }) => {
    await h.watcher.close();
    const attempts = receiver.attempts.length;
    await sleep(QUIET);
    assert.equal(receiver.attempts.length, attempts);
    assert.ok(h.logLines.some((l) => l.level === 40 && l.msg === 'watcher closed with a change still undelivered'));
  }));
