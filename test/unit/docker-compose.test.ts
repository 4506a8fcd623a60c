/**
 * docker-compose.yml (and the Dockerfile it builds) checked against core/config.ts: the mcpship
 * services may only set environment variables that config.ts reads, their values must load, and the
 * team stack around them (Temporal on PostgreSQL, its UI, MongoDB, the search-attribute job) must be
 * wired the way mcpship expects. Renaming an env var in ENV_KEYS fails here, naming both spellings.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { assertSafeBind } from '../../api/admin-auth.ts';
import { ENV_KEYS, loadConfig, type Config, type EnvName } from '../../core/config.ts';
import { SEARCH_ATTRIBUTE_NAMES } from '../../core/search-attributes.ts';

const root = path.resolve(import.meta.dirname, '../..');
const composeFile = path.join(root, 'docker-compose.yml');

/** Environment names the mcpship services may set although config.ts does not read them. */
const OTHER_ALLOWED_ENV = new Set(['NODE_ENV']);
const RUNNER_NODES = ['mcpship-runner-1', 'mcpship-runner-2'] as const;
const GATEWAYS = ['mcpship-api', 'mcpship-api-2'] as const;
const MCPSHIP_SERVICES = ['mcpship-worker', ...RUNNER_NODES, ...GATEWAYS] as const;
const REQUIRED_SERVICES = ['postgresql', 'temporal', 'temporal-ui', 'temporal-admin-tools', 'mongodb', ...MCPSHIP_SERVICES];

/** The config keys compose must set, and what they must come out as inside the containers. */
const EXPECTED: Record<string, (c: Config) => unknown> = {
  'temporal.address': (c) => c.temporal.address,
  'mongo.uri': (c) => c.mongo.uri,
  'api.host': (c) => c.api.host,
  'api.adminToken': (c) => c.api.adminToken,
  stateDir: (c) => c.stateDir,
  servicesDir: (c) => c.servicesDir,
};
/** The .env a team writes once: the secret compose must not have a default for. */
const GENERATED_TOKEN = randomBytes(32).toString('hex');
const HOST_ENV: Env = { MCPSHIP_ADMIN_TOKEN: GENERATED_TOKEN };
const EXPECTED_VALUES: Record<string, unknown> = {
  'temporal.address': 'temporal:7233',
  'mongo.uri': 'mongodb://mongodb:27017/?replicaSet=rs0',
  'api.host': '0.0.0.0',
  'api.adminToken': GENERATED_TOKEN,
  stateDir: '/data/mcpship',
  servicesDir: '/data/services',
};

type Env = Record<string, string>;
interface PortMapping {
  published: number;
  target: number;
}
interface Service {
  image?: string;
  build?: string | { context?: string };
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: (string | number | { target: number; published?: number | string })[];
  volumes?: (string | { type?: string; source?: string; target: string })[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[]; disable?: boolean };
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

/**
 * Compose's own interpolation against a host environment (the shell and .env): a set variable wins,
 * else `${VAR:-default}` and `${VAR-default}` give the default, and `${VAR:?message}` stops
 * `docker compose up` with the message. `$$` is a literal `$`. A variable without a default would
 * silently be empty, so it is an error here.
 */
function interpolate(value: string, where: string, hostEnv: Env = HOST_ENV): string {
  return value.replace(/\$(\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g, (match, dollar, name, op, arg, bare) => {
    if (dollar === '$') return '$';
    if (bare || !op) throw new Error(`${where}: ${match} has no default, so it is empty without a .env file; write \${${name ?? bare}:-default}`);
    const set = hostEnv[name];
    if (set) return set;
    if (op.endsWith('?')) throw new Error(`${where}: required variable ${name} ${arg}`);
    return arg;
  });
}

function environmentOf(compose: Compose, name: string, hostEnv: Env = HOST_ENV): Env {
  const raw = compose.services[name]?.environment ?? {};
  const entries: [string, string][] = Array.isArray(raw)
    ? raw.map((line) => {
        const eq = line.indexOf('=');
        return eq < 0 ? [line, ''] : [line.slice(0, eq), line.slice(eq + 1)];
      })
    : Object.entries(raw).map(([k, v]) => [k, v === null ? '' : String(v)]);
  return Object.fromEntries(entries.map(([k, v]) => [k, interpolate(v, `services.${name}.environment.${k}`, hostEnv)]));
}

function portsOf(compose: Compose, name: string): PortMapping[] {
  return (compose.services[name]?.ports ?? []).map((port) => {
    if (typeof port === 'object') return { target: port.target, published: Number(port.published ?? port.target) };
    const parts = interpolate(String(port), `services.${name}.ports`).replace(/\/(tcp|udp)$/, '').split(':');
    const target = Number(parts.at(-1));
    return { target, published: parts.length > 1 ? Number(parts.at(-2)) : target };
  });
}

function dependsOn(compose: Compose, name: string): Record<string, string> {
  const raw = compose.services[name]?.depends_on ?? {};
  return Array.isArray(raw)
    ? Object.fromEntries(raw.map((dep) => [dep, 'service_started']))
    : Object.fromEntries(Object.entries(raw).map(([dep, opts]) => [dep, opts?.condition ?? 'service_started']));
}

function mountsOf(compose: Compose, name: string): { source: string; target: string }[] {
  return (compose.services[name]?.volumes ?? []).map((v) => {
    if (typeof v === 'object') return { source: v.source ?? '', target: v.target };
    const [source = '', target = ''] = v.split(':');
    return { source, target };
  });
}

function words(value: string | string[] | undefined): string {
  return (Array.isArray(value) ? value.join(' ') : (value ?? '')).replace(/\s+/g, ' ');
}

/** The env name config.ts reads for a config key, or a failure that says the key has none. */
function envNameFor(key: string): EnvName {
  const found = (Object.entries(ENV_KEYS) as [EnvName, string][]).find(([, k]) => k === key);
  assert.ok(found, `core/config.ts ENV_KEYS no longer maps any environment variable to ${key}`);
  return found[0];
}

describe('docker-compose.yml', () => {
  let compose: Compose;
  let cwd: string;

  before(() => {
    compose = parse(readFileSync(composeFile, 'utf8'), { merge: true }) as Compose;
    // An empty directory, so no mcpship.config.* of the checkout leaks into loadConfig.
    cwd = mkdtempSync(path.join(tmpdir(), 'mcpship-compose-'));
  });
  after(() => rmSync(cwd, { recursive: true, force: true }));

  test('has the services of the team stack, on the expected images', () => {
    for (const name of REQUIRED_SERVICES) assert.ok(compose.services[name], `service ${name} is missing`);
    const image = (name: string) => compose.services[name]?.image ?? '';
    assert.match(image('postgresql'), /^postgres:16(\b|$)/);
    assert.match(image('temporal'), /^temporalio\/auto-setup:/);
    assert.match(image('temporal-ui'), /^temporalio\/ui:/);
    assert.match(image('temporal-admin-tools'), /^temporalio\/admin-tools:/);
    assert.match(image('mongodb'), /^mongo:7(\b|$)/);
    for (const name of MCPSHIP_SERVICES) {
      const build = compose.services[name]!.build;
      const context = typeof build === 'object' ? build.context : build;
      assert.equal(context, '.', `${name} must be built from the Dockerfile at the top level`);
    }
  });

  test('Temporal persists in the postgresql service and the UI points at it', () => {
    const temporal = environmentOf(compose, 'temporal');
    assert.equal(temporal.DB, 'postgres12');
    assert.equal(temporal.POSTGRES_SEEDS, 'postgresql');
    assert.equal(temporal.POSTGRES_PWD, environmentOf(compose, 'postgresql').POSTGRES_PASSWORD);
    assert.equal(temporal.POSTGRES_USER, environmentOf(compose, 'postgresql').POSTGRES_USER);
    assert.equal(dependsOn(compose, 'temporal').postgresql, 'service_healthy');
    assert.equal(environmentOf(compose, 'temporal-ui').TEMPORAL_ADDRESS, 'temporal:7233');
  });

  test('publishes 7233, 8233, 27017 and 4000', () => {
    const has = (name: string, published: number, target: number) =>
      assert.ok(
        portsOf(compose, name).some((p) => p.published === published && p.target === target),
        `${name} should publish ${published}:${target}, has ${JSON.stringify(portsOf(compose, name))}`,
      );
    has('temporal', 7233, 7233);
    has('temporal-ui', 8233, 8080);
    has('mongodb', 27017, 27017);
    has('mcpship-api', 4000, 4000);
    has('mcpship-api-2', 4001, 4000);
  });

  for (const name of MCPSHIP_SERVICES) {
    describe(name, () => {
      test('sets only environment variables that core/config.ts reads', () => {
        const known = new Set<string>(Object.keys(ENV_KEYS));
        const unknown = Object.keys(environmentOf(compose, name)).filter((k) => !known.has(k) && !OTHER_ALLOWED_ENV.has(k));
        assert.deepEqual(
          unknown,
          [],
          `${name} sets ${unknown.join(', ')}, which core/config.ts does not read: renamed there? ` +
            `ENV_KEYS has ${[...known].join(', ')}`,
        );
      });

      test('sets the config keys a container needs, under the names config.ts reads them from', () => {
        const env = environmentOf(compose, name);
        for (const key of Object.keys(EXPECTED)) {
          const envName = envNameFor(key);
          assert.ok(envName in env, `${name} does not set ${envName}, which core/config.ts reads for ${key}`);
        }
      });

      test('its environment passes loadConfig, and every variable takes effect', () => {
        const env = environmentOf(compose, name);
        const { config, sources } = loadConfig(env, cwd);
        for (const [key, read] of Object.entries(EXPECTED)) assert.equal(read(config), EXPECTED_VALUES[key], key);
        for (const envName of Object.keys(env)) {
          if (OTHER_ALLOWED_ENV.has(envName)) continue;
          const key = ENV_KEYS[envName as EnvName];
          assert.equal(sources.get(key), envName, `${envName} did not set ${key}`);
        }
        // The port published by mcpship-api must be the one the API listens on.
        if ((GATEWAYS as readonly string[]).includes(name)) {
          assert.ok(portsOf(compose, name).some((p) => p.target === config.api.port), `nothing published to api.port ${config.api.port}`);
          const check = words(compose.services[name]!.healthcheck?.test);
          assert.match(check, new RegExp(`127\\.0\\.0\\.1:${config.api.port}/`), 'the healthcheck should probe api.port');
        }
      });

      test('waits for Temporal, MongoDB and the search-attribute job', () => {
        const deps = dependsOn(compose, name);
        assert.equal(deps.temporal, 'service_healthy');
        assert.equal(deps.mongodb, 'service_healthy');
        assert.equal(deps['temporal-admin-tools'], 'service_completed_successfully');
        for (const dep of ['temporal', 'mongodb']) {
          const check = compose.services[dep]?.healthcheck;
          assert.ok(check?.test && !check.disable, `${name} waits for ${dep} to be healthy, but ${dep} has no healthcheck`);
        }
      });

      test('mounts the shared state volume and ./services where the config points', () => {
        const { config } = loadConfig(environmentOf(compose, name), cwd);
        const mounts = mountsOf(compose, name);
        const state = mounts.find((m) => m.target === config.stateDir);
        assert.ok(state, `${name}: nothing mounted at stateDir ${config.stateDir}`);
        assert.ok(compose.volumes && state.source in compose.volumes, `${name}: stateDir should be a named volume`);
        const services = mounts.find((m) => m.target === config.servicesDir);
        assert.equal(services?.source, './services', `${name}: ./services should be mounted at ${config.servicesDir}`);
      });
    });
  }

  test('the admin token is a secret the team generates, never a literal in the file', () => {
    for (const name of MCPSHIP_SERVICES) {
      assert.throws(
        () => environmentOf(compose, name, {}),
        /required variable MCPSHIP_ADMIN_TOKEN is not set - .*openssl rand/,
        `${name}: docker compose up must stop, saying how to make a token, while MCPSHIP_ADMIN_TOKEN is unset`,
      );
      const { config } = loadConfig(environmentOf(compose, name), cwd);
      // The API listens on every interface in compose, so the generated token must pass the bind check.
      assert.doesNotThrow(() => assertSafeBind(config.api));
    }
    const docs = readFileSync(path.join(root, 'docs', 'docker-compose.md'), 'utf8');
    assert.match(docs, /MCPSHIP_ADMIN_TOKEN=\$\(openssl rand -hex 32\)/, 'docs/docker-compose.md should show how to generate the token');
  });

  test('worker, runner nodes and gateways agree on every setting but the node\'s own', () => {
    const configs = MCPSHIP_SERVICES.map((name) => loadConfig(environmentOf(compose, name), cwd).config);
    const shared = (c: Config) => ({ ...c, runner: { ...c.runner, nodeId: undefined, advertiseHost: undefined, bindHost: undefined } });
    for (const [i, c] of configs.entries()) assert.deepEqual(shared(c), shared(configs[0]!), `${MCPSHIP_SERVICES[i]} differs from mcpship-worker`);
    const mountOf = (name: string) => mountsOf(compose, name).find((m) => m.target === configs[0]!.stateDir)?.source;
    for (const name of MCPSHIP_SERVICES) assert.equal(mountOf(name), mountOf('mcpship-worker'), `${name} must share the state volume (instances start from staged versions)`);
  });

  test('each runner node has its own id and advertises its own service name, listening on every interface', () => {
    const nodes = RUNNER_NODES.map((name) => loadConfig(environmentOf(compose, name), cwd).config.runner);
    assert.equal(new Set(nodes.map((n) => n.nodeId)).size, RUNNER_NODES.length, 'node ids must differ');
    RUNNER_NODES.forEach((name, i) => {
      assert.ok(nodes[i]!.nodeId, `${name} needs MCPSHIP_NODE_ID: a restarted container must take its own node back`);
      assert.equal(nodes[i]!.advertiseHost, name, `${name} must advertise the name gateways resolve it by`);
      assert.equal(nodes[i]!.bindHost, '0.0.0.0');
      assert.match(words(compose.services[name]!.command), /cli\/main\.ts runner$/);
    });
  });

  test('MongoDB is a replica set the mcpship services name in their URI', () => {
    const mongo = compose.services.mongodb!;
    assert.match(words(mongo.command), /--replSet rs0\b/);
    assert.match(words(mongo.healthcheck?.test), /rs\.initiate\(\{ _id: 'rs0', members: \[\{ _id: 0, host: 'mongodb:27017' \}\] \}\)/);
    assert.equal(new URL(loadConfig(environmentOf(compose, 'mcpship-worker'), cwd).config.mongo.uri!).searchParams.get('replicaSet'), 'rs0');
  });

  test('the worker runs `worker --no-runner`; the API runs the image default, `api`', () => {
    assert.match(words(compose.services['mcpship-worker']!.command), /cli\/main\.ts worker --no-runner$/);
    const dockerfile = readFileSync(path.join(root, 'Dockerfile'), 'utf8');
    assert.match(dockerfile, /^FROM node:20-bookworm-slim/m);
    assert.match(dockerfile, /npm ci/);
    // The API serves the dashboard's build at /: without it the image would answer 503 there.
    assert.match(dockerfile, /^RUN node --import tsx dashboard\/build\.ts$/m);
    assert.match(dockerfile, /^COPY --from=dashboard \/app\/dashboard\/dist \.\/dashboard\/dist$/m);
    const cmd = dockerfile.match(/^CMD (\[.*\])\s*$/m);
    assert.ok(cmd, 'Dockerfile needs an exec-form CMD');
    assert.deepEqual(JSON.parse(cmd[1]!), ['node', '--import', 'tsx', 'cli/main.ts', 'api']);
    for (const name of GATEWAYS) {
      const api = compose.services[name]!;
      assert.ok(api.command === undefined || /cli\/main\.ts api$/.test(words(api.command)), name);
    }
    const ignored = readFileSync(path.join(root, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
    for (const entry of ['node_modules', '.mcpship', 'services', '.env']) assert.ok(ignored.includes(entry), `.dockerignore should list ${entry}`);
  });

  test('temporal-admin-tools registers the Keyword search attributes on the namespace mcpship uses', () => {
    const admin = compose.services['temporal-admin-tools']!;
    const script = words(admin.entrypoint) + ' ' + words(admin.command);
    assert.match(script, /temporal operator search-attribute create/);
    for (const attr of new Set(['McpService', 'McpVersion', 'McpStage', ...SEARCH_ATTRIBUTE_NAMES])) {
      assert.match(script, new RegExp(`--name ${attr} --type Keyword\\b`), `${attr} is not registered as a Keyword`);
    }
    assert.match(script, /already exists/, 'the job should treat attributes that already exist as success');
    const adminEnv = environmentOf(compose, 'temporal-admin-tools');
    const namespace = loadConfig(environmentOf(compose, 'mcpship-worker'), cwd).config.temporal.namespace;
    assert.equal(adminEnv.TEMPORAL_ADDRESS, 'temporal:7233');
    assert.equal(adminEnv.TEMPORAL_NAMESPACE, namespace, 'search attributes must go on the namespace mcpship runs in');
    assert.equal(environmentOf(compose, 'temporal').DEFAULT_NAMESPACE ?? 'default', namespace, 'auto-setup must create that namespace');
    assert.equal(dependsOn(compose, 'temporal-admin-tools').temporal, 'service_healthy');
  });
});
