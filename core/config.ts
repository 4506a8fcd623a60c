import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { SERVICE_NAME_PATTERN } from './manifest.ts';

const port = z.coerce.number().int().min(1).max(65535);
/** A configured pin's client: a gateway client key (api/gateway/client-key.ts) or a clientInfo name. */
const CLIENT_PIN_PATTERN = /^(client|cred|info|addr|name):.+$/;

/** The alert rules (alerts/rules.ts); each has defaults below, and any service may override them. */
export const ALERT_RULE_IDS = [
  'breakerOpen',
  'rollback',
  'replayBlocked',
  'validationFailing',
  'errorRate',
  'p99Latency',
  'captureDropping',
  'captureSpilling',
  'temporalUnreachable',
  'mongoUnreachable',
  'crashLoop',
] as const;
export type AlertRuleId = (typeof ALERT_RULE_IDS)[number];

const alertRuleFields = {
  enabled: z.boolean(),
  /** How long the condition must hold before the alert fires (pending until then). */
  forSec: z.coerce.number().min(0),
  /** Event rules: how long after the event the condition holds; crashLoop: the window exits are counted in. */
  holdSec: z.coerce.number().min(0),
  /** errorRate: a share (0.05); p99Latency: ms; validationFailing: failures in a row; crashLoop: exits in the window. */
  threshold: z.coerce.number().min(0),
  /** errorRate and p99Latency: fewer requests in the last minute judge nothing. */
  minRequests: z.coerce.number().int().min(1),
};
const alertRule = (d: { forSec?: number; holdSec?: number; threshold?: number }) =>
  z
    .object({
      enabled: alertRuleFields.enabled.default(true),
      forSec: alertRuleFields.forSec.default(d.forSec ?? 0),
      holdSec: alertRuleFields.holdSec.default(d.holdSec ?? 0),
      threshold: alertRuleFields.threshold.default(d.threshold ?? 0),
      minRequests: alertRuleFields.minRequests.default(10),
    })
    .strict()
    .default({});
export const AlertRuleOverrideSchema = z.object(alertRuleFields).partial().strict();
export type AlertRuleSettings = Required<z.infer<typeof AlertRuleOverrideSchema>>;

export const ConfigSchema = z
  .object({
    stateDir: z.string().min(1).default('.mcpship'),
    servicesDir: z.string().min(1).default('services'),
    temporal: z
      .object({
        address: z.string().regex(/^[^\s:]+:\d+$/, 'host:port').optional(),
        namespace: z.string().min(1).default('default'),
        port: port.default(7233),
        uiPort: port.default(8233),
        taskQueue: z.string().min(1).default('mcpship'),
        /** Temporal Web UI of an external cluster, for links (the embedded one is known by its port). */
        uiUrl: z.string().url().optional(),
      })
      .strict()
      .default({}),
    mongo: z
      .object({
        uri: z.string().regex(/^mongodb(\+srv)?:\/\//, 'a mongodb:// or mongodb+srv:// URI').optional(),
        port: port.default(27017),
        database: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and -').default('mcpship'),
      })
      .strict()
      .default({}),
    api: z
      .object({
        host: z.string().min(1).default('127.0.0.1'),
        port: port.default(4000),
        adminToken: z.string().min(8).optional(),
        allowedOrigins: z.array(z.string().url()).default([]),
        /** Host names (no port) the API answers to besides the loopback names: what DNS rebinding cannot forge. */
        allowedHosts: z.array(z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)$/, 'a host name or IP address, without a port')).default([]),
        /** Concurrent /api/events/stream subscribers; the next one gets 503. */
        maxEventStreams: z.coerce.number().int().min(1).max(100_000).default(64),
      })
      .strict()
      .default({}),
    watcher: z
      .object({
        debounceMs: z.coerce.number().int().min(0).max(60_000).default(300),
      })
      .strict()
      .default({}),
    gateway: z
      .object({
        /** Largest request body accepted; larger ones get 413 with a JSON-RPC error. */
        bodyLimitBytes: z.coerce.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
        /** How long the gateway waits for an instance before answering with a timeout error. */
        upstreamTimeoutMs: z.coerce.number().int().min(100).max(600_000).default(30_000),
        /**
         * Per-client version pins (api/gateway/pinning.ts), per service: a client key as the gateway
         * records it (`client:<X-Mcpship-Client>`, `cred:<hash>`, …) or `name:<clientInfo name>` →
         * the x.y.z version the client was built against. X-Mcpship-Service-Version wins over it.
         */
        pins: z
          .record(
            z.string().regex(SERVICE_NAME_PATTERN, 'a service name'),
            z.record(z.string().regex(CLIENT_PIN_PATTERN, 'client:, cred:, info:, addr: or name: and a value'), z.string().regex(/^\d+\.\d+\.\d+$/, 'an x.y.z version')),
          )
          .default({}),
        capture: z
          .object({
            enabled: z.coerce.boolean().default(true),
            /** Payloads larger than this are stored cut, marked truncated. */
            maxPayloadBytes: z.coerce.number().int().min(256).max(16 * 1024 * 1024).default(64 * 1024),
            /**
             * Dotted paths blanked before storage besides the defaults, which always apply
             * (api/gateway/capture/redact.ts DEFAULT_REDACT); key names match ignoring case, `_` and `-`.
             */
            redact: z.array(z.string().min(1)).default([]),
            /** All capture spill files together; beyond this, messages are dropped and reported as an event. */
            spillMaxBytes: z.coerce.number().int().min(1024 * 1024).default(512 * 1024 * 1024),
          })
          .strict()
          .default({}),
      })
      .strict()
      .default({}),
    runner: z
      .object({
        /** How long a stopping instance keeps serving in-flight requests before it is signalled. */
        drainMs: z.coerce.number().int().min(0).max(600_000).default(2_000),
        readyTimeoutMs: z.coerce.number().int().min(1_000).max(600_000).default(30_000),
        /** This runner's node id; stable across restarts so that a restarted node reaps what it left. Default: the host name. */
        nodeId: z
          .string()
          .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lower-case letters, digits and dashes')
          .optional(),
        /** The host name or address gateways reach this node's instances at (a compose service name, a pod IP). */
        advertiseHost: z.string().min(1).default('127.0.0.1'),
        /** Where this node listens for gateways when advertiseHost is not loopback; default: advertiseHost. */
        bindHost: z.string().min(1).optional(),
        /** Instances of all pools together that may be placed on this node. */
        capacity: z.coerce.number().int().min(1).max(10_000).default(32),
        /** A node not renewing its lease for this long is dead: its instances are placed elsewhere. */
        leaseMs: z.coerce.number().int().min(1_000).max(600_000).default(10_000),
      })
      .strict()
      .default({}),
    /** How long data is kept; 0 keeps it forever. A cleanup pass runs every intervalMinutes (core/retention.ts). */
    retention: z
      .object({
        messagesDays: z.coerce.number().min(0).default(14),
        eventsDays: z.coerce.number().min(0).default(90),
        metricsDays: z.coerce.number().min(0).default(30),
        /** Sessions not seen for this long (closed or idle). */
        sessionsDays: z.coerce.number().min(0).default(7),
        intervalMinutes: z.coerce.number().min(1).max(7 * 24 * 60).default(60),
      })
      .strict()
      .default({}),
    alerts: z
      .object({
        enabled: z.coerce.boolean().default(true),
        /** How often the worker evaluates the rules (alerts/evaluator.ts). */
        intervalSec: z.coerce.number().min(1).max(3600).default(15),
        /** Where notifications go: `json` posts the generic payload, `slack` a Slack-compatible one. */
        webhooks: z.array(z.object({ url: z.string().url(), format: z.enum(['json', 'slack']).default('json') }).strict()).default([]),
        rules: z
          .object({
            breakerOpen: alertRule({ holdSec: 600 }),
            rollback: alertRule({ holdSec: 900 }),
            replayBlocked: alertRule({ holdSec: 3600 }),
            validationFailing: alertRule({ threshold: 3 }),
            errorRate: alertRule({ forSec: 300, threshold: 0.05 }),
            p99Latency: alertRule({ forSec: 300, threshold: 2000 }),
            captureDropping: alertRule({ holdSec: 600 }),
            captureSpilling: alertRule({ holdSec: 60 }),
            temporalUnreachable: alertRule({ forSec: 30 }),
            mongoUnreachable: alertRule({ forSec: 30 }),
            crashLoop: alertRule({ holdSec: 300, threshold: 3 }),
          })
          .strict()
          .default({}),
        /** Per service: rule settings laid over the defaults, e.g. `{ calc: { errorRate: { threshold: 0.2 } } }`. */
        services: z.record(z.string(), z.object(Object.fromEntries(ALERT_RULE_IDS.map((id) => [id, AlertRuleOverrideSchema.optional()])) as Record<AlertRuleId, z.ZodOptional<typeof AlertRuleOverrideSchema>>).strict()).default({}),
      })
      .strict()
      .default({}),
    logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  })
  .strict();

export type Config = z.infer<typeof ConfigSchema>;

/**
 * Every environment variable mcpship reads, and the config key it sets. docker-compose.yml and the
 * README are checked against this table, so it is the one place an env name is spelled.
 */
export const ENV_KEYS = {
  MCPSHIP_STATE_DIR: 'stateDir',
  MCPSHIP_SERVICES_DIR: 'servicesDir',
  TEMPORAL_ADDRESS: 'temporal.address',
  TEMPORAL_NAMESPACE: 'temporal.namespace',
  MCPSHIP_TEMPORAL_PORT: 'temporal.port',
  MCPSHIP_TEMPORAL_UI_PORT: 'temporal.uiPort',
  MCPSHIP_TASK_QUEUE: 'temporal.taskQueue',
  MCPSHIP_TEMPORAL_UI_URL: 'temporal.uiUrl',
  MONGODB_URI: 'mongo.uri',
  MCPSHIP_MONGO_PORT: 'mongo.port',
  MCPSHIP_MONGO_DATABASE: 'mongo.database',
  MCPSHIP_API_HOST: 'api.host',
  MCPSHIP_API_PORT: 'api.port',
  MCPSHIP_ADMIN_TOKEN: 'api.adminToken',
  MCPSHIP_ALLOWED_ORIGINS: 'api.allowedOrigins',
  MCPSHIP_ALLOWED_HOSTS: 'api.allowedHosts',
  MCPSHIP_MAX_EVENT_STREAMS: 'api.maxEventStreams',
  MCPSHIP_DEBOUNCE_MS: 'watcher.debounceMs',
  MCPSHIP_BODY_LIMIT_BYTES: 'gateway.bodyLimitBytes',
  MCPSHIP_UPSTREAM_TIMEOUT_MS: 'gateway.upstreamTimeoutMs',
  MCPSHIP_CLIENT_PINS: 'gateway.pins',
  MCPSHIP_CAPTURE: 'gateway.capture.enabled',
  MCPSHIP_CAPTURE_MAX_PAYLOAD_BYTES: 'gateway.capture.maxPayloadBytes',
  MCPSHIP_CAPTURE_REDACT: 'gateway.capture.redact',
  MCPSHIP_CAPTURE_SPILL_MAX_BYTES: 'gateway.capture.spillMaxBytes',
  MCPSHIP_RETENTION_MESSAGES_DAYS: 'retention.messagesDays',
  MCPSHIP_RETENTION_EVENTS_DAYS: 'retention.eventsDays',
  MCPSHIP_RETENTION_METRICS_DAYS: 'retention.metricsDays',
  MCPSHIP_RETENTION_SESSIONS_DAYS: 'retention.sessionsDays',
  MCPSHIP_RETENTION_INTERVAL_MINUTES: 'retention.intervalMinutes',
  MCPSHIP_DRAIN_MS: 'runner.drainMs',
  MCPSHIP_NODE_ID: 'runner.nodeId',
  MCPSHIP_ADVERTISE_HOST: 'runner.advertiseHost',
  MCPSHIP_BIND_HOST: 'runner.bindHost',
  MCPSHIP_RUNNER_CAPACITY: 'runner.capacity',
  MCPSHIP_NODE_LEASE_MS: 'runner.leaseMs',
  MCPSHIP_ALERTS: 'alerts.enabled',
  MCPSHIP_ALERTS_INTERVAL_SEC: 'alerts.intervalSec',
  MCPSHIP_ALERT_WEBHOOKS: 'alerts.webhooks',
  MCPSHIP_LOG_LEVEL: 'logLevel',
} as const;

export type EnvName = keyof typeof ENV_KEYS;

/** The variable that names an optional config file (JSON or YAML). */
export const CONFIG_FILE_ENV = 'MCPSHIP_CONFIG';
const DEFAULT_CONFIG_FILES = ['mcpship.config.json', 'mcpship.config.yaml', 'mcpship.config.yml'];

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Raw = Record<string, unknown>;

function setPath(target: Raw, dotted: string, value: unknown): void {
  const keys = dotted.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) {
    if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
    node = node[key] as Raw;
  }
  node[keys[keys.length - 1]!] = value;
}

function readConfigFile(file: string): Raw {
  const text = readFileSync(file, 'utf8');
  try {
    const parsed: unknown = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new Error('the top level must be an object');
    }
    return parsed as Raw;
  } catch (err) {
    throw new ConfigError(`config file ${file} cannot be read: ${(err as Error).message}`);
  }
}

function findConfigFile(env: NodeJS.ProcessEnv, cwd: string): string | undefined {
  const named = env[CONFIG_FILE_ENV];
  if (named) {
    const file = path.resolve(cwd, named);
    if (!existsSync(file)) throw new ConfigError(`${CONFIG_FILE_ENV} names ${file}, which does not exist`);
    return file;
  }
  return DEFAULT_CONFIG_FILES.map((f) => path.join(cwd, f)).find((f) => existsSync(f));
}

/** `url` or `slack=url`/`json=url`, comma separated. */
function alertWebhooks(value: string): { url: string; format: string }[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const m = /^(json|slack)=(.+)$/.exec(entry);
      return m ? { format: m[1]!, url: m[2]! } : { format: 'json', url: entry };
    });
}

/** `service/client=version`, comma separated (the version is after the last `=`). */
function clientPins(value: string): Record<string, Record<string, string>> {
  const pins: Record<string, Record<string, string>> = {};
  for (const entry of value.split(',').map((s) => s.trim()).filter(Boolean)) {
    const slash = entry.indexOf('/');
    const eq = entry.lastIndexOf('=');
    if (slash < 1 || eq < slash + 2) throw new ConfigError(`MCPSHIP_CLIENT_PINS: "${entry}" is not service/client=version`);
    (pins[entry.slice(0, slash)] ??= {})[entry.slice(slash + 1, eq)] = entry.slice(eq + 1);
  }
  return pins;
}

function envValue(name: EnvName, value: string): unknown {
  if (name === 'MCPSHIP_ALERT_WEBHOOKS') return alertWebhooks(value);
  if (name === 'MCPSHIP_CLIENT_PINS') return clientPins(value);
  if (name === 'MCPSHIP_CAPTURE' || name === 'MCPSHIP_ALERTS') return !['0', 'false', 'off', 'no'].includes(value.toLowerCase());
  return name === 'MCPSHIP_ALLOWED_ORIGINS' || name === 'MCPSHIP_ALLOWED_HOSTS' || name === 'MCPSHIP_CAPTURE_REDACT'
    ? value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : value;
}

function describeIssue(issue: z.ZodIssue, sources: Map<string, string>): string {
  const key = issue.path.join('.');
  const source = sources.get(key);
  const where = source ? ` (from ${source})` : '';
  return `${key || '(top level)'}${where}: ${issue.message}`;
}

export interface LoadedConfig {
  config: Config;
  /** Where each key that was set came from: an env name or the config file. */
  sources: Map<string, string>;
  file?: string;
}

/** Reads the optional config file, lays the environment over it, validates, and resolves paths. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): LoadedConfig {
  const file = findConfigFile(env, cwd);
  const raw: Raw = file ? readConfigFile(file) : {};
  const sources = new Map<string, string>();
  if (file) for (const key of Object.keys(raw)) sources.set(key, file);
  for (const [name, key] of Object.entries(ENV_KEYS) as [EnvName, string][]) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    setPath(raw, key, envValue(name, value));
    sources.set(key, name);
  }
  const result = ConfigSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  - ${describeIssue(i, sources)}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const config = result.data;
  config.stateDir = path.resolve(cwd, config.stateDir);
  config.servicesDir = path.resolve(cwd, config.servicesDir);
  return { config, sources, ...(file ? { file } : {}) };
}
