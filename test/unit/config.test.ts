import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { z } from 'zod';
import { ConfigError, ConfigSchema, ENV_KEYS, loadConfig } from '../../core/config.ts';

const emptyDir = () => mkdtempSync(path.join(os.tmpdir(), 'mcpship-config-'));

test('defaults are the embedded stack on its usual ports, paths resolved against cwd', () => {
  const cwd = emptyDir();
  const { config, file } = loadConfig({}, cwd);
  assert.equal(file, undefined);
  assert.equal(config.temporal.port, 7233);
  assert.equal(config.temporal.uiPort, 8233);
  assert.equal(config.mongo.port, 27017);
  assert.equal(config.temporal.address, undefined);
  assert.equal(config.mongo.uri, undefined);
  assert.equal(config.api.host, '127.0.0.1');
  assert.equal(config.stateDir, path.join(cwd, '.mcpship'));
  assert.equal(config.servicesDir, path.join(cwd, 'services'));
});

test('environment variables override the config file, which overrides defaults', () => {
  const cwd = emptyDir();
  writeFileSync(path.join(cwd, 'mcpship.config.json'), JSON.stringify({ api: { port: 5000, host: '0.0.0.0' }, watcher: { debounceMs: 50 } }));
  const { config, sources, file } = loadConfig({ MCPSHIP_API_PORT: '6000', MCPSHIP_ALLOWED_ORIGINS: 'http://a.test, http://b.test' }, cwd);
  assert.equal(file, path.join(cwd, 'mcpship.config.json'));
  assert.equal(config.api.port, 6000);
  assert.equal(config.api.host, '0.0.0.0');
  assert.equal(config.watcher.debounceMs, 50);
  assert.deepEqual(config.api.allowedOrigins, ['http://a.test', 'http://b.test']);
  assert.equal(sources.get('api.port'), 'MCPSHIP_API_PORT');
});

test('a YAML file named by MCPSHIP_CONFIG is read', () => {
  const cwd = emptyDir();
  writeFileSync(path.join(cwd, 'team.yaml'), 'temporal:\n  namespace: team\n');
  const { config } = loadConfig({ MCPSHIP_CONFIG: 'team.yaml' }, cwd);
  assert.equal(config.temporal.namespace, 'team');
});

test('an invalid value names the key, its source and what is allowed', () => {
  assert.throws(
    () => loadConfig({ MCPSHIP_API_PORT: '70000' }, emptyDir()),
    (err: unknown) => err instanceof ConfigError && /api\.port \(from MCPSHIP_API_PORT\): Number must be less than or equal to 65535/.test(err.message),
  );
  assert.throws(
    () => loadConfig({ MONGODB_URI: 'http://nope' }, emptyDir()),
    (err: unknown) => err instanceof ConfigError && /mongo\.uri \(from MONGODB_URI\): a mongodb:\/\/ or mongodb\+srv:\/\/ URI/.test(err.message),
  );
  assert.throws(
    () => loadConfig({ MCPSHIP_LOG_LEVEL: 'loud' }, emptyDir()),
    (err: unknown) => err instanceof ConfigError && /logLevel .*Expected 'trace' \| 'debug'/.test(err.message),
  );
});

test('an unknown key in the config file is refused rather than ignored', () => {
  const cwd = emptyDir();
  writeFileSync(path.join(cwd, 'mcpship.config.json'), JSON.stringify({ api: { prot: 1 } }));
  assert.throws(() => loadConfig({}, cwd), /Unrecognized key\(s\) in object: 'prot'/);
});

test('a config file that is not valid JSON says which file', () => {
  const cwd = emptyDir();
  writeFileSync(path.join(cwd, 'mcpship.config.json'), '{ nope');
  assert.throws(() => loadConfig({}, cwd), (err: unknown) => err instanceof ConfigError && err.message.includes('mcpship.config.json cannot be read'));
});

/** The schema of a dotted key, every segment looked up (defaults and optionals unwrapped); undefined when a segment is unknown. */
function schemaAt(key: string): z.ZodTypeAny | undefined {
  let schema: z.ZodTypeAny = ConfigSchema;
  for (const segment of key.split('.')) {
    while (schema instanceof z.ZodDefault || schema instanceof z.ZodOptional) schema = schema._def.innerType;
    if (!(schema instanceof z.ZodObject)) return undefined;
    const next = (schema.shape as Record<string, z.ZodTypeAny>)[segment];
    if (!next) return undefined;
    schema = next;
  }
  return schema;
}

test('every env name maps to a whole key the schema knows: a value, not a section', () => {
  for (const [env, key] of Object.entries(ENV_KEYS)) {
    const schema = schemaAt(key);
    assert.ok(schema, `${env} → ${key}: not in the schema`);
    let inner = schema;
    while (inner instanceof z.ZodDefault || inner instanceof z.ZodOptional) inner = inner._def.innerType;
    assert.ok(!(inner instanceof z.ZodObject), `${env} → ${key}: a section, not a value`);
  }
  // The walk itself tells a wrong tail from a right one.
  assert.equal(schemaAt('gateway.capture.nope'), undefined);
  assert.ok(schemaAt('gateway.capture.enabled'));
});
