/**
 * The manifest's `stdio` settings as command-line flags of the bridge process
 * (stdio-bridge-main.ts): written by the launch of an instance, read back and validated by the
 * bridge with the manifest's own schema, so that both sides agree on names and bounds.
 */
import { StdioSettingsSchema, type StdioSettings } from '../core/manifest.ts';

const FLAGS = {
  statelessPool: 'stateless-pool',
  warmSpares: 'warm-spares',
  maxSessions: 'max-sessions',
  sessionIdleSec: 'session-idle-sec',
} as const satisfies Record<keyof StdioSettings, string>;

type Flag = (typeof FLAGS)[keyof StdioSettings];

export function bridgeFlags(settings: StdioSettings): string[] {
  return (Object.keys(FLAGS) as (keyof StdioSettings)[]).flatMap((key) => [`--${FLAGS[key]}`, String(settings[key])]);
}

/** The flags' definitions for node:util parseArgs. */
export const BRIDGE_FLAG_OPTIONS = Object.fromEntries(Object.values(FLAGS).map((flag) => [flag, { type: 'string' as const }])) as Record<Flag, { type: 'string' }>;

/** The settings given as flags (absent ones left to the defaults); throws with every bad flag named. */
export function settingsFromFlags(values: Partial<Record<Flag, string>>): Partial<StdioSettings> {
  const given: Record<string, number> = {};
  for (const key of Object.keys(FLAGS) as (keyof StdioSettings)[]) {
    const value = values[FLAGS[key]];
    if (value !== undefined) given[key] = Number(value);
  }
  const result = StdioSettingsSchema.partial().safeParse(given);
  if (result.success) return result.data;
  throw new Error(result.error.issues.map((i) => `--${FLAGS[i.path[0] as keyof StdioSettings]}: ${i.message}`).join('; '));
}
