/**
 * The admin token: from MCPSHIP_ADMIN_TOKEN (or the config file), else the one `mcpship token`
 * generated and stored in the state dir. The API, the gateway and the CLI all resolve it here, so a
 * generated token works everywhere without being typed anywhere.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from './config.ts';

export const ADMIN_TOKEN_FILE = 'admin-token';
/** Shorter tokens are guessable by a patient attacker once the API is reachable from a network. */
export const MIN_REMOTE_TOKEN_LENGTH = 32;
/** Placeholders from docs and examples that end up in real deployments. */
const KNOWN_DEFAULTS = /change-?me|changeit|default|example|password|secret|letmein|admin-?token|placeholder|xxxxxx|123456/i;
const MIN_DISTINCT_CHARS = 10;

export function adminTokenFile(stateDir: string): string {
  return path.join(stateDir, ADMIN_TOKEN_FILE);
}

/** Why a token is too weak to guard an API reachable beyond loopback, or undefined when it is fine. */
export function weakTokenReason(token: string): string | undefined {
  if (token.length < MIN_REMOTE_TOKEN_LENGTH) return `it is ${token.length} characters long; at least ${MIN_REMOTE_TOKEN_LENGTH} are needed`;
  if (KNOWN_DEFAULTS.test(token)) return 'it looks like a placeholder from an example (change-me, secret, password, ...)';
  if (new Set(token).size < MIN_DISTINCT_CHARS) return `it has fewer than ${MIN_DISTINCT_CHARS} distinct characters`;
  return undefined;
}

export async function readStoredToken(stateDir: string): Promise<string | undefined> {
  try {
    const token = (await readFile(adminTokenFile(stateDir), 'utf8')).trim();
    return token || undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The token in force: the configured one wins over the stored one. */
export async function resolveAdminToken(config: Pick<Config, 'stateDir' | 'api'>): Promise<string | undefined> {
  return config.api.adminToken ?? (await readStoredToken(config.stateDir));
}

/**
 * Writes a new random token, readable by its owner only. The file is written under another name with
 * mode 0600 from the start and renamed into place, so no reader ever sees a partial or world-readable
 * token.
 */
export async function storeNewToken(stateDir: string): Promise<string> {
  const token = randomBytes(32).toString('base64url');
  await mkdir(stateDir, { recursive: true });
  const file = adminTokenFile(stateDir);
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, `${token}\n`, { mode: 0o600, flag: 'wx' });
    await rename(tmp, file);
  } finally {
    await rm(tmp, { force: true });
  }
  return token;
}

/** Constant-time comparison, so the answer's timing does not reveal how much of a guess was right. */
export function tokenMatches(expected: string | undefined, given: string | undefined): boolean {
  if (!expected || given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
