/**
 * The environment of every process mcpship starts for a service — validation steps (install, lint,
 * test, build) and instances alike: an allow-list of what programs need to run, never mcpship's own
 * environment. Install scripts and tests of any saved service run here, so the worker's secrets
 * (the admin token, the database URI, cloud credentials) must not be readable by them.
 */

/** Taken from mcpship's environment when set: finding programs and files, locale, time zone, the terminal. */
const BASE_NAMES = ['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'TERM', 'TMPDIR', 'TZ', 'LANG', 'LANGUAGE', 'LC_ALL'];
const LOCALE = /^LC_[A-Z]+$/;
/**
 * What a package install needs to reach a registry from behind a proxy or a TLS-intercepting
 * gateway: proxy addresses and CA bundle paths (paths to public certificates, no secrets).
 */
const NETWORK_NAMES = ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy', 'NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE', 'SSL_CERT_DIR'];

/**
 * Never given to a service, even when its manifest names them: mcpship's own settings and secrets,
 * and the credentials of the cloud the worker runs in.
 */
const NEVER = [
  /^MCPSHIP_/,
  /^TEMPORAL_/,
  /^MONGODB_/,
  /^AWS_/,
  /^AZURE_/,
  /^ARM_/,
  /^GOOGLE_/,
  /^GCLOUD_/,
  /^CLOUDSDK_/,
  /^DIGITALOCEAN_/,
  /^KUBECONFIG$/,
  /^NPM_TOKEN$/,
  /^GITHUB_TOKEN$/,
  /^GH_TOKEN$/,
];

export function neverPassed(name: string): boolean {
  return NEVER.some((pattern) => pattern.test(name));
}

/** What a service's manifest adds: its own variables, and names it takes from mcpship's environment. */
export interface ChildEnvRequest {
  /** The manifest's `start.env`: literal values, laid over everything else. */
  env: Readonly<Record<string, string>>;
  /** The manifest's `passEnv`: names passed through from mcpship's environment when set. */
  passEnv?: readonly string[];
}

/**
 * The whole environment of a child (callers must not extend the parent's). A name on the NEVER list
 * is never taken from the parent, whatever asked for it; the manifest parser refuses such names in
 * `passEnv` up front.
 */
export function childEnv(request: ChildEnvRequest, parent: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  const take = (name: string) => {
    const value = parent[name];
    if (value !== undefined && !neverPassed(name)) env[name] = value;
  };
  for (const name of [...BASE_NAMES, ...NETWORK_NAMES]) take(name);
  for (const name of Object.keys(parent)) if (LOCALE.test(name)) take(name);
  for (const name of request.passEnv ?? []) take(name);
  // Literal values written in the manifest are the service's own, not mcpship's: they always apply.
  Object.assign(env, request.env);
  return env;
}
