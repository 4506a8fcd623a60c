/**
 * Property-based fuzzing of the manifest parser (core/manifest.ts): whatever a service folder's
 * mcp.json holds, loading it gives a manifest or a ManifestError naming the file and each bad field,
 * never another exception, a hang or a polluted prototype.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { loadManifest, ManifestError, parseManifest, SERVICE_NAME_PATTERN, VERSION_PATTERN } from '../../core/manifest.ts';

const RUNS = 1_000;
const FILE = 'services/fuzz/mcp.json';

const valid = () => ({
  name: 'fuzz',
  version: '1.2.3',
  transport: 'stdio',
  start: { command: 'node', args: ['dist/index.js'], env: { LEVEL: 'debug' } },
  steps: { lint: { run: 'npm run lint' }, test: { run: 'npm test' }, build: { run: 'npm run build' } },
  rollout: { steps: [10, 100], analysis: { minRequests: 1 } },
});

/** Every field path of the valid manifest, for mutations. */
function paths(value: unknown, prefix: string[] = []): string[][] {
  if (typeof value !== 'object' || value === null) return [prefix];
  return [prefix, ...Object.entries(value).flatMap(([k, v]) => paths(v, [...prefix, k]))];
}
const FIELD_PATHS = paths(valid()).filter((p) => p.length > 0);

function setAt(target: Record<string, unknown>, at: string[], value: unknown): void {
  let node = target as Record<string, unknown>;
  for (const k of at.slice(0, -1)) node = node[k] as Record<string, unknown>;
  if (value === undefined) delete node[at[at.length - 1]!];
  else node[at[at.length - 1]!] = value;
}

/** The outcome the parser promises: a manifest, or a ManifestError whose every issue names a field and says why. */
function outcome(run: () => unknown): 'ok' | ManifestError {
  try {
    run();
    return 'ok';
  } catch (err) {
    assert.ok(err instanceof ManifestError, `expected a ManifestError, got ${String(err)}`);
    assert.ok(err.issues.length > 0);
    for (const issue of err.issues) {
      assert.equal(typeof issue.field, 'string');
      assert.ok(issue.message.length > 0, 'every issue says why');
    }
    assert.ok(err.message.startsWith(FILE), 'the message names the file');
    return err;
  }
}

const jsonish = fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constantFrom(undefined, '', ' ', '../..', '/etc/passwd', '\u0000', 'a'.repeat(10_000), -1, 1e308, 0.5, [], {}));
let cases = 0;
const counted = <T>(arb: fc.Arbitrary<T>) => arb.map((v) => (cases++, v));

const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

test('any JSON value as the manifest: a ManifestError, never another exception', () => {
  fc.assert(fc.property(counted(fc.oneof(fc.jsonValue(), fc.anything())), (raw) => void outcome(() => parseManifest(raw, FILE))), { numRuns: RUNS });
});

test('one field of a valid manifest replaced by anything: parsed, or refused naming that field', () => {
  fc.assert(
    fc.property(counted(fc.tuple(fc.constantFrom(...FIELD_PATHS), jsonish)), ([at, value]) => {
      const raw = valid();
      setAt(raw, at, value);
      const result = outcome(() => parseManifest(raw, FILE));
      if (result === 'ok') return;
      const field = at.join('.');
      assert.ok(
        result.issues.some((i) => field.startsWith(i.field.replace(/\[\d+\]/g, '')) || i.field.replace(/\[\d+\]/g, '').startsWith(field) || i.field === ''),
        `issues ${JSON.stringify(result.issues)} do not name ${field}`,
      );
    }),
    { numRuns: RUNS },
  );
});

test('unknown keys anywhere ($, dotted, __proto__, constructor) are refused by name; no prototype is touched', () => {
  const key = fc.oneof(fc.string({ minLength: 1 }), fc.constantFrom('$schema', 'a.b', '__proto__', 'constructor', 'prototype', '$where'));
  fc.assert(
    fc.property(fc.tuple(fc.constantFrom([], ['start'], ['steps'], ['steps', 'lint'], ['rollout'], ['rollout', 'analysis']), key), ([at, k]) => {
      // JSON.parse makes "__proto__" an own key, as reading mcp.json from disk does.
      const raw = JSON.parse(JSON.stringify(valid())) as Record<string, unknown>;
      const node = at.reduce<Record<string, unknown>>((n, p) => n[p] as Record<string, unknown>, raw);
      fc.pre(!Object.hasOwn(node, k));
      // Counted past the precondition: a skipped value is generated again and is no case.
      cases++;
      // A replacer function, not a string: generated keys such as "$`" would be read as patterns.
      const text = JSON.stringify(raw).replace(JSON.stringify(node), () => JSON.stringify(node).replace(/^\{/, () => `{${JSON.stringify(k)}:{"polluted":true},`));
      const result = outcome(() => parseManifest(JSON.parse(text), FILE));
      assert.notEqual(result, 'ok', `unknown key ${JSON.stringify(k)} at ${at.join('.')} accepted`);
      assert.ok((result as ManifestError).message.includes(JSON.stringify(k)), 'the unknown key is named');
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
    }),
    { numRuns: RUNS / 4 },
  );
});

test('generated valid names and versions load as written; anything else is refused', () => {
  const name = fc.stringMatching(SERVICE_NAME_PATTERN);
  const version = fc.tuple(fc.nat(), fc.nat(), fc.nat()).map((v) => v.join('.'));
  fc.assert(
    fc.property(counted(fc.tuple(fc.oneof(name, fc.string()), fc.oneof(version, fc.string()))), ([n, v]) => {
      const result = outcome(() => parseManifest({ ...valid(), name: n, version: v }, FILE));
      assert.equal(result === 'ok', SERVICE_NAME_PATTERN.test(n) && VERSION_PATTERN.test(v), `${n} ${v}`);
    }),
    { numRuns: RUNS },
  );
});

test('any bytes in mcp.json on disk: a ManifestError naming the file, never another exception', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mcpship-fuzz-manifest-'));
  dirs.push(dir);
  const file = path.join(dir, 'mcp.json');
  await fc.assert(
    fc.asyncProperty(counted(fc.oneof(fc.uint8Array({ maxLength: 256 }), fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? '')))), async (bytes) => {
      await writeFile(file, bytes);
      try {
        await loadManifest(dir);
      } catch (err) {
        assert.ok(err instanceof ManifestError, `expected a ManifestError, got ${String(err)}`);
        assert.ok(err.message.startsWith(file));
      }
    }),
    { numRuns: RUNS / 4 },
  );
});

test('10,000 levels of nesting in a field: refused by field, no stack overflow', () => {
  const depth = 10_000;
  const text = JSON.stringify(valid()).replace('"LEVEL":"debug"', `"LEVEL":${'['.repeat(depth)}${']'.repeat(depth)}`);
  const result = outcome(() => parseManifest(JSON.parse(text), FILE));
  assert.notEqual(result, 'ok');
  assert.deepEqual((result as ManifestError).issues.map((i) => i.field), ['start.env.LEVEL']);
  const unknown = JSON.stringify(valid()).replace('"name"', `"deep":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)},"name"`);
  assert.match((outcome(() => parseManifest(JSON.parse(unknown), FILE)) as ManifestError).message, /unknown field "deep"/);
  cases += 2;
});

test('cases run', (t) => {
  t.diagnostic(`fuzz-manifest: ${cases} generated cases`);
  assert.equal(cases, RUNS * 3.5 + 2, 'every generator ran its full count');
});
