import type { ErrorRequestHandler, RequestHandler } from 'express';

/** An error with an HTTP status and a stable code; the one JSON error shape the API answers with. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ErrorBody {
  error: { code: string; message: string };
}

export const notFound: RequestHandler = (req, _res, next) => {
  next(new HttpError(404, 'not_found', `no route for ${req.method} ${req.path}`));
};

/** Known errors keep their status and message; anything else is a 500 without a stack trace. */
export function errorHandler(log: { error(obj: object, msg: string): void }): ErrorRequestHandler {
  return (err, _req, res, _next) => {
    if (err instanceof HttpError) {
      res.status(err.status).json({ error: { code: err.code, message: err.message } } satisfies ErrorBody);
      return;
    }
    const status = typeof err?.status === 'number' && err.status >= 400 && err.status < 500 ? err.status : 500;
    if (status === 500) log.error({ err }, 'unhandled API error');
    const message = status === 500 ? 'internal error' : String(err?.message ?? 'bad request');
    res.status(status).json({ error: { code: status === 500 ? 'internal' : 'bad_request', message } } satisfies ErrorBody);
  };
}
