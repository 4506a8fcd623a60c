import { SERVICE_NAME_PATTERN, VERSION_PATTERN } from '../core/manifest.ts';
import { HttpError } from './errors.ts';

/** A service name from a URL: checked, so that no path built from it can leave the services root. */
export function serviceParam(value: unknown): string {
  const name = String(value ?? '');
  if (!SERVICE_NAME_PATTERN.test(name)) {
    throw new HttpError(400, 'bad_service_name', `invalid service name ${JSON.stringify(name)}: lower-case letters, digits and "-", 1-63 characters`);
  }
  return name;
}

export function versionParam(value: unknown): string {
  const version = String(value ?? '');
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
