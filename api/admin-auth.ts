import type { RequestHandler } from 'express';
import { MIN_REMOTE_TOKEN_LENGTH, tokenMatches, weakTokenReason } from '../core/admin-token.ts';
import { HttpError } from './errors.ts';
import { bearerToken, isLoopbackBind, type SecuritySettings } from './gateway/security.ts';

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Every request that changes state: with an admin token in force it needs `Authorization: Bearer
 * <token>`, and it must say `Content-Type: application/json` — a page on another site can send a
 * form or a no-CORS fetch with a simple content type, never this one without a preflight.
 */
export function stateChangeGuard(token: string | undefined): RequestHandler {
  return (req, _res, next) => {
    if (!STATE_CHANGING.has(req.method)) return next();
    if (token && !tokenMatches(token, bearerToken(req))) {
      return next(new HttpError(401, 'unauthorized', 'this route needs Authorization: Bearer <admin token> (MCPSHIP_ADMIN_TOKEN, or the one `mcpship token` stored)'));
    }
    if (!req.is('application/json')) {
      return next(new HttpError(415, 'unsupported_media_type', `${req.method} ${req.originalUrl} needs Content-Type: application/json (a JSON body, {} when there is nothing to say)`));
    }
    next();
  };
}

export class UnsafeBindError extends Error {
  override name = 'UnsafeBindError';
}

/**
 * Beyond loopback, anyone who can reach the port could deploy, roll back and archive, so mcpship
 * does not start there without a strong token.
 */
export function assertSafeBind(settings: Pick<SecuritySettings, 'host' | 'adminToken'>): void {
  if (isLoopbackBind(settings.host)) return;
  const how =
    'run `mcpship token` once (it generates a token and stores it in the state dir, mode 0600) or set MCPSHIP_ADMIN_TOKEN to a random secret ' +
    `of at least ${MIN_REMOTE_TOKEN_LENGTH} characters, e.g. $(openssl rand -base64 32); or bind to 127.0.0.1 (MCPSHIP_API_HOST)`;
  if (!settings.adminToken) {
    throw new UnsafeBindError(`refusing to listen on ${settings.host} without an admin token: anyone who can reach it could change deployments. ${how}`);
  }
  const weak = weakTokenReason(settings.adminToken);
  if (weak) throw new UnsafeBindError(`refusing to listen on ${settings.host} with a weak admin token (${weak}). ${how}`);
}
