/**
 * The service manifest: `mcp.json` in each service's folder says what the service is called, which
 * version it is, how MCP clients reach it (stdio or Streamable HTTP), how to start its built server,
 * and the lint / test / build steps mcpship runs to validate a save. docs/manifest.md documents
 * every field with an example.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { neverPassed } from './child-env.ts';
import { pathExists } from './path-exists.ts';

/** The manifest's file name inside a service folder. */
export const MANIFEST_FILE = 'mcp.json';

/** A service name: lower-case letters, digits and dashes, 1-63 characters, not starting with a dash. */
export const SERVICE_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** A service version: semver core `x.y.z`, no leading zeros, no pre-release or build suffix. */
export const VERSION_PATTERN = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$/;

/** Names of the validation steps, in the order mcpship runs them. */
export const STEP_NAMES = ['lint', 'test', 'build'] as const;
export type StepName = (typeof STEP_NAMES)[number];

/** Default timeout of each validation step, in seconds. */
export const DEFAULT_STEP_TIMEOUT_SEC: Readonly<Record<StepName, number>> = Object.freeze({
  lint: 120,
  test: 300,
  build: 300,
});

/** Default MCP endpoint path of an http service. */
export const DEFAULT_HTTP_PATH = '/mcp';

/** Install command used when `install` is absent and the service folder has a package-lock.json. */
export const DEFAULT_INSTALL_COMMAND = 'npm ci --no-audit --no-fund';

/** The lock file whose presence turns on the default install command. */
export const LOCK_FILE = 'package-lock.json';

/** Environment variable through which the runner gives an http service its port. */
export const PORT_ENV = 'PORT';

const POSITIVE_INT = 'expected a positive integer';
const NON_EMPTY = 'expected a non-empty string';

const nonEmpty = z.string({ invalid_type_error: NON_EMPTY }).trim().min(1, NON_EMPTY);

const timeoutSec = z
  .number({ invalid_type_error: POSITIVE_INT })
  .int(POSITIVE_INT)
  .positive(POSITIVE_INT)
  .max(86_400, 'expected at most 86400 (one day)');

const step = (name: StepName) =>
  z
    .object({
      /** A shell command line, run with the service folder as working directory. */
      run: z.string({ invalid_type_error: NON_EMPTY }).trim().min(1, NON_EMPTY),
      timeoutSec: timeoutSec.default(DEFAULT_STEP_TIMEOUT_SEC[name]),
    })
    .strict();

const start = z
  .object({
    /** The program to run (looked up on PATH), e.g. `node`. */
    command: nonEmpty,
    /** Its arguments, e.g. `["dist/index.js"]`. */
    args: z.array(z.string({ invalid_type_error: 'expected a string' }), { invalid_type_error: 'expected an array of strings' }).default([]),
    /** Extra environment variables. */
    env: z
      .record(
        z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name'),
        z.string({ invalid_type_error: 'expected a string value' }),
        { invalid_type_error: 'expected an object of string values' },
      )
      .default({}),
  })
  .strict();

const rollout = z
  .object({
    /** Deploy each newly staged version at once (a canary), or wait for a deploy from the API/CLI. */
    autoDeploy: z.boolean({ invalid_type_error: 'expected true or false' }).default(true),
    /** Instances per version. */
    instances: z.number().int().min(1).max(16).default(1),
    /** Canary weights in percent, increasing, ending at 100 (Flagger's step weights). */
    steps: z
      .array(z.number().int().min(1).max(100))
      .min(1)
      .default([10, 25, 50, 100])
      .refine((steps) => steps.every((w, i) => i === 0 || w > steps[i - 1]!) && steps[steps.length - 1] === 100, 'expected increasing weights ending at 100'),
    /** How long each step is held before its analysis. */
    intervalSec: z.number().min(0.1).max(86_400).default(30),
    analysis: z
      .object({
        /** Below this many requests in a step, the check counts as failed only with requireTraffic. */
        minRequests: z.number().int().min(0).default(10),
        requireTraffic: z.boolean().default(false),
        minSuccessRate: z.number().min(0).max(1).default(0.95),
        maxP99Ms: z.number().positive().default(2_000),
        /** Failed checks tolerated before the rollout rolls back (Flagger's threshold). */
        maxFailedChecks: z.number().int().min(0).default(0),
        /**
         * A step with fewer than minRequests work requests (and requireTraffic off) is not a pass:
         * `hold` holds it for another interval, up to maxInconclusiveHolds times, then pauses the
         * rollout for a person (Argo's inconclusive rule); `pass` lets it through. A version the
         * replay gate proved passes such steps either way.
         */
        onInconclusive: z.enum(['hold', 'pass']).default('hold'),
        maxInconclusiveHolds: z.number().int().min(0).max(100).default(3),
      })
      .strict()
      .default({}),
    /** canary: weights stepped up; blueGreen: the new version gets 100% at once, the previous one kept warm. */
    strategy: z.enum(['canary', 'blueGreen']).default('canary'),
    blueGreen: z
      .object({
        /** How long the previous version's instances keep running after the switch, for an instant rollback. */
        keepWarmSec: z.number().min(0).max(86_400).default(300),
      })
      .strict()
      .default({}),
    /**
     * Before the first canary weight (or the blue-green switch), the captured traffic of the
     * active version is replayed against the candidate and a second stable instance (issue 9).
     */
    replayGate: z
      .object({
        enabled: z.boolean().default(true),
        /** Largest share of replayed requests that may break (error where stable answered). */
        maxBreakingShare: z.number().min(0).max(1).default(0),
        /** Largest share that may differ beyond stable's own noise. */
        maxDifferingShare: z.number().min(0).max(1).default(0.05),
        /** Fewer replayed requests than this prove nothing (the gate passes, unproven). */
        minMessages: z.number().int().min(1).default(10),
        /** Requests replayed at most (whole sessions kept together). */
        sampleSize: z.number().int().min(1).max(1_000_000).default(1_000),
        /** How far back the capture is read. */
        windowHours: z.number().positive().max(24 * 365).default(24 * 7),
        /** Tools replayed although destructive or unannotated (they will run on the replay's instances). */
        allowTools: z.array(z.string().min(1)).default([]),
        /** Replayed sessions in flight at once. */
        concurrency: z.number().int().min(1).max(64).default(4),
      })
      .strict()
      .default({}),
    /** The gateway's circuit breaker for this service (core/health.ts BreakerThresholds). */
    breaker: z
      .object({
        maxErrorRate: z.number().min(0).max(1).optional(),
        maxP99Ms: z.number().positive().optional(),
        minRequests: z.number().int().min(1).optional(),
        windowMs: z.number().int().min(1_000).max(60_000).optional(),
        cooldownMs: z.number().int().min(100).optional(),
      })
      .strict()
      .default({}),
    /** A rollback goes straight to 100% once the target is ready, without canary steps. */
    fastRollback: z.boolean().default(true),
  })
  .strict();

export type RolloutSettings = z.infer<typeof rollout>;
export const DEFAULT_ROLLOUT: RolloutSettings = rollout.parse({});

const common = {
  name: z
    .string({ invalid_type_error: 'expected a string' })
    .regex(SERVICE_NAME_PATTERN, 'expected lower-case letters, digits and "-", 1-63 characters, starting with a letter or digit'),
  version: z.string({ invalid_type_error: 'expected a string' }).regex(VERSION_PATTERN, 'expected a semver version x.y.z, e.g. "1.0.0"'),
  description: z.string({ invalid_type_error: 'expected a string' }).max(500, 'expected at most 500 characters').optional(),
  start,
  /**
   * Variables passed from mcpship's environment to the steps and the instances (core/child-env.ts);
   * nothing else is, beyond PATH, HOME, locale and proxy settings. mcpship's own and cloud
   * credentials are refused.
   */
  passEnv: z
    .array(
      z
        .string({ invalid_type_error: 'expected a string' })
        .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name')
        .refine((name) => !neverPassed(name), (name) => ({ message: `${name} is mcpship's own setting or a credential of the machine it runs on; it is never passed to a service` })),
      { invalid_type_error: 'expected an array of environment variable names' },
    )
    .default([]),
  /** `null` turns the default install off; a string replaces it. */
  install: nonEmpty.nullable().optional(),
  steps: z
    .object({ lint: step('lint'), test: step('test'), build: step('build') }, { invalid_type_error: 'expected an object with lint, test and build' })
    .strict(),
  rollout: rollout.default({}),
};

const http = z
  .object({
    path: z
      .string({ invalid_type_error: 'expected a string' })
      .regex(/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/, 'expected a URL path starting with "/", e.g. "/mcp"')
      .default(DEFAULT_HTTP_PATH),
  })
  .strict();

/**
 * How the runner's stdio bridge serves a stdio server (runner/stdio-bridge.ts): a shared pool for
 * stateless (2026-07-28) clients, one process per session for the session revisions, warm spares
 * so that a new session does not wait for a process start, and the bounds on all of it.
 */
export const StdioSettingsSchema = z
  .object({
    /** Long-lived processes shared by every stateless (2026-07-28) client of an instance. */
    statelessPool: z.number({ invalid_type_error: POSITIVE_INT }).int(POSITIVE_INT).min(1, POSITIVE_INT).max(16, 'expected at most 16').default(2),
    /** Processes started ahead of demand and handed to the next new session (or pool slot). */
    warmSpares: z.number({ invalid_type_error: 'expected an integer 0-8' }).int('expected an integer 0-8').min(0, 'expected an integer 0-8').max(8, 'expected an integer 0-8').default(1),
    /** Sessions (each its own process) per instance; a new session beyond it gets HTTP 503. */
    maxSessions: z.number({ invalid_type_error: POSITIVE_INT }).int(POSITIVE_INT).min(1, POSITIVE_INT).max(1024, 'expected at most 1024').default(32),
    /** A session with no request in flight for this long is ended (its process too); GET streams do not count. */
    sessionIdleSec: timeoutSec.default(600),
  })
  .strict();

export type StdioSettings = z.infer<typeof StdioSettingsSchema>;
export const DEFAULT_STDIO: Readonly<StdioSettings> = Object.freeze(StdioSettingsSchema.parse({}));

const TRANSPORT_MESSAGE = 'expected "stdio" or "http"';

const ManifestObjectSchema = z
  .object({
    ...common,
    transport: z.enum(['stdio', 'http'], { errorMap: () => ({ message: TRANSPORT_MESSAGE }) }),
    http: http.optional(),
    stdio: StdioSettingsSchema.optional(),
  })
  .strict();
type ManifestObject = z.infer<typeof ManifestObjectSchema>;
type Common = Omit<ManifestObject, 'transport' | 'http' | 'stdio'>;

/** mcp.json after validation, as written: `install` not yet resolved against the folder. */
export type ManifestFile =
  | (Common & { transport: 'stdio'; stdio: StdioSettings })
  | (Common & { transport: 'http'; http: { path: string } });

/**
 * The schema of `mcp.json`. One flat object (so every bad field is reported at once), narrowed to a
 * union on `transport`: `http` and `stdio` are each only allowed, and always filled in, for their
 * own transport.
 */
export const ManifestFileSchema = ManifestObjectSchema.superRefine((m, ctx) => {
  if (m.transport === 'stdio' && m.http !== undefined) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['http'], message: 'only allowed with transport "http"' });
  }
  if (m.transport === 'http' && m.stdio !== undefined) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['stdio'], message: 'only allowed with transport "stdio"' });
  }
  if (m.transport === 'http' && Object.hasOwn(m.start.env, PORT_ENV)) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['start', 'env', PORT_ENV], message: `set by the runner for http services; remove it` });
  }
}).transform((m): ManifestFile => {
  const { http: httpOptions, stdio: stdioOptions, transport, ...rest } = m;
  return transport === 'http'
    ? { ...rest, transport, http: httpOptions ?? { path: DEFAULT_HTTP_PATH } }
    : { ...rest, transport, stdio: stdioOptions ?? { ...DEFAULT_STDIO } };
});

export type ManifestFileInput = z.input<typeof ManifestFileSchema>;
export type Step = ManifestFile['steps'][StepName];

/**
 * A loaded manifest: every default filled in, and `install` resolved to the command to run before
 * the steps (`null`: nothing to install).
 */
export type Manifest = ManifestFile extends infer M ? (M extends unknown ? Omit<M, 'install'> & { install: string | null } : never) : never;
export type StdioManifest = Extract<Manifest, { transport: 'stdio' }>;
export type HttpManifest = Extract<Manifest, { transport: 'http' }>;

export interface ManifestIssue {
  /** The field, dotted, with array indexes in brackets: `steps.test.timeoutSec`, `start.args[1]`. */
  field: string;
  message: string;
}

/** A manifest that is missing, not JSON, or invalid. The message names the file and each bad field. */
export class ManifestError extends Error {
  override name = 'ManifestError';
  constructor(
    /** The manifest file, as the caller named it (serviceDir joined with mcp.json). */
    readonly file: string,
    readonly issues: ManifestIssue[],
  ) {
    super(issues.map((i) => `${file}: ${i.field ? `${i.field}: ` : ''}${i.message}`).join('\n'));
  }
}

function fieldOf(issuePath: (string | number)[]): string {
  return issuePath.reduce<string>((out, key) => (typeof key === 'number' ? `${out}[${key}]` : out ? `${out}.${key}` : key), '');
}

function messageOf(issue: z.ZodIssue, raw: unknown): string {
  if (issue.code === 'invalid_type' && issue.received === 'undefined') {
    return issue.path.join('.') === 'transport' ? `required: ${TRANSPORT_MESSAGE}` : 'required';
  }
  if (issue.code === 'invalid_enum_value' && issue.path.join('.') === 'transport') {
    return `${TRANSPORT_MESSAGE}, got ${JSON.stringify((raw as Record<string, unknown>).transport)}`;
  }
  if (issue.code === 'unrecognized_keys') return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`;
  if (issue.code === 'invalid_type' && issue.path.length === 0) return 'expected a JSON object';
  return issue.message;
}

/**
 * Validates already-parsed manifest JSON. `file` only names the source in error messages. The
 * result's `install` is not resolved against a folder: absent stays `undefined` (see loadManifest).
 */
export function parseManifest(raw: unknown, file: string = MANIFEST_FILE): ManifestFile {
  const result = ManifestFileSchema.safeParse(raw);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => ({ field: fieldOf(issue.path), message: messageOf(issue, raw) }));
  throw new ManifestError(file, issues);
}

/**
 * Reads and validates `<serviceDir>/mcp.json`, fills in defaults and resolves `install`: the
 * manifest's own command, or `npm ci --no-audit --no-fund` when it is absent and the folder has a
 * package-lock.json, or `null`. Throws ManifestError when the file is missing, not JSON, or invalid.
 */
export async function loadManifest(serviceDir: string): Promise<Manifest> {
  const file = path.join(serviceDir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const message =
      code === 'ENOENT'
        ? `not found: every service folder needs an ${MANIFEST_FILE} manifest (see docs/manifest.md)`
        : `cannot be read: ${(err as Error).message}`;
    throw new ManifestError(file, [{ field: '', message }]);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ManifestError(file, [{ field: '', message: `invalid JSON: ${(err as Error).message}` }]);
  }
  const manifest = parseManifest(raw, file);
  const install =
    manifest.install === null
      ? null
      : (manifest.install ?? ((await pathExists(path.join(serviceDir, LOCK_FILE))) ? DEFAULT_INSTALL_COMMAND : null));
  return { ...manifest, install };
}
