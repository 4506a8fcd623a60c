import { SERVICE_NAME_PATTERN, VERSION_PATTERN } from '../core/manifest.ts';
import { HttpError } from './errors.ts';

/** Only a string: String(['1.0.0']) would pass a pattern for a JSON array or a repeated query key. */
function stringOnly(value: unknown, code: string, what: string): string {
  if (value === undefined || value === null || typeof value === 'string') return value ?? '';
  const kind = Array.isArray(value) ? 'an array' : typeof value === 'object' ? 'an object' : `a ${typeof value}`;
  throw new HttpError(400, code, `${what} must be a string, not ${kind}`);
}

/** A service name from a URL: checked, so that no path built from it can leave the services root. */
export function serviceParam(value: unknown): string {
  const name = stringOnly(value, 'bad_service_name', 'a service name');
  if (!SERVICE_NAME_PATTERN.test(name)) {
    throw new HttpError(400, 'bad_service_name', `invalid service name ${JSON.stringify(name)}: lower-case letters, digits and "-", 1-63 characters`);
  }
  return name;
}

export function versionParam(value: unknown): string {
  const version = stringOnly(value, 'bad_version', 'a version');
  if (!VERSION_PATTERN.test(version)) throw new HttpError(400, 'bad_version', `invalid version ${JSON.stringify(version)}: expected x.y.z`);
  return version;
}

export function intParam(value: unknown, name: string, fallback: number | undefined, min = 0): number | undefined {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new HttpError(400, 'bad_query', `${name} must be an integer ≥ ${min}`);
  return n;
}

export function dateParam(value: unknown, name: string): Date | undefined {
  if (value === undefined || value === '') return undefined;
  const d = new Date(String(value));
  if (Number.isNaN(d.getTime())) throw new HttpError(400, 'bad_query', `${name} must be an ISO date-time`);
  return d;
}
