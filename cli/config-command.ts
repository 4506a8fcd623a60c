import { ENV_KEYS, type LoadedConfig } from '../core/config.ts';

function flatten(value: unknown, prefix = ''): [string, unknown][] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [[prefix, value]];
  return Object.entries(value).flatMap(([k, v]) => flatten(v, prefix ? `${prefix}.${k}` : k));
}

export function runConfigCommand({ config, sources, file }: LoadedConfig, json: boolean): void {
  if (json) {
    // The token is a secret: configuration dumps end up in tickets and chat.
    const masked = config.api.adminToken === undefined ? config : { ...config, api: { ...config.api, adminToken: '********' } };
    console.log(JSON.stringify(masked, null, 2));
    return;
  }
  const envFor = new Map(Object.entries(ENV_KEYS).map(([env, key]) => [key as string, env]));
  console.log(`config file: ${file ?? '(none)'}`);
  for (const [key, value] of flatten(config)) {
    const secret = key === 'api.adminToken' && value !== undefined;
    const shown = secret ? '********' : JSON.stringify(value);
    const source = sources.get(key) ?? 'default';
    console.log(`${key.padEnd(22)} ${String(shown).padEnd(34)} ${source}${envFor.has(key) ? `  [${envFor.get(key)}]` : ''}`);
  }
}
