import { timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { HttpError } from './errors.ts';

/** Routes that change state need `Authorization: Bearer <token>` once an admin token is configured. */
export function adminAuth(token: string | undefined): RequestHandler {
  return (req, _res, next) => {
    if (!token) return next();
    const given = /^Bearer (.+)$/.exec(req.get('authorization') ?? '')?.[1] ?? '';
    const ok = given.length === token.length && timingSafeEqual(Buffer.from(given), Buffer.from(token));
    next(ok ? undefined : new HttpError(401, 'unauthorized', 'this route needs Authorization: Bearer <MCPSHIP_ADMIN_TOKEN>'));
  };
}
