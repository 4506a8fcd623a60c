import { adminTokenFile, readStoredToken, storeNewToken } from '../core/admin-token.ts';
import type { LoadedConfig } from '../core/config.ts';

/**
 * `mcpship token`: makes the admin token on first use and prints it once, on stdout alone (so
 * `MCPSHIP_ADMIN_TOKEN=$(mcpship token)` works); afterwards it only says where it is. The API and
 * the CLI read the stored token themselves.
 */
export async function runTokenCommand({ config, sources }: LoadedConfig, opts: { rotate?: boolean; json?: boolean }): Promise<void> {
  const file = adminTokenFile(config.stateDir);
  const json = (answer: Record<string, unknown>) => opts.json && (console.log(JSON.stringify({ file, ...answer })), true);
  if (config.api.adminToken !== undefined) {
    if (json({ source: sources.get('api.adminToken') ?? 'config', stored: false })) return;
    console.error(`the admin token in force comes from ${sources.get('api.adminToken') ?? 'the config'}; ${file} is not used while it is set`);
    return;
  }
  if (!opts.rotate && (await readStoredToken(config.stateDir))) {
    if (json({ source: file, stored: true })) return;
    console.error(`an admin token is already stored in ${file} (readable by you only; it was shown when it was made). \`mcpship token --rotate\` replaces it; restart mcpship afterwards.`);
    return;
  }
  const token = await storeNewToken(config.stateDir);
  if (json({ source: file, stored: true, token })) return;
  console.error(`${opts.rotate ? 'a new' : 'an'} admin token is stored in ${file} (mode 0600); it is shown this once. Clients send it as Authorization: Bearer <token>.`);
  console.log(token);
}
