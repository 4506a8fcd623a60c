/**
 * Holding an initialize response back until its answer has been read: the session table then
 * records a new session and its negotiated protocol version in one write (two writes to one
 * session document collide on FerretDB's SQLite backend under load), still before the client
 * learns the session id from the response head.
 */
import { PassThrough, type Readable } from 'node:stream';
import type { JsonRpcId } from '../../core/routing.ts';
import type { ResponseTap } from './response-tap.ts';

/** Beyond this much body the answer is not waited for (the version is then written on its own). */
export const HOLD_MAX_BYTES = 256 * 1024;

export interface Held {
  /** What was read while holding. */
  chunks: Buffer[];
  /** The body ended (or failed) while held: the tap has had all of it. */
  ended: boolean;
  /** The response failed while held. */
  failed: boolean;
}

/**
 * Reads `res` into `tap` (calling `onChunk` for each chunk) until the tap has seen the answer to
 * `id`, the body ended, or HOLD_MAX_BYTES were read. The stream is left paused, so that nothing
 * passes unseen until the caller has its listeners on it again and calls release().
 */
export function holdUntilAnswered(res: Readable, tap: ResponseTap, id: JsonRpcId, onChunk: (chunk: Buffer) => void): Promise<Held> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  return new Promise((resolve) => {
    const done = (ended: boolean, failed: boolean) => {
      res.off('data', onData);
      res.off('end', onEnd);
      res.off('error', onError);
      res.off('close', onClose);
      if (!ended) res.pause();
      resolve({ chunks, ended, failed });
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      bytes += chunk.length;
      onChunk(chunk);
      if (tap.answered.has(id) || bytes >= HOLD_MAX_BYTES) done(false, false);
    };
    const onEnd = () => {
      tap.end();
      done(true, false);
    };
    const onError = () => done(true, true);
    // Destroyed (a timeout, the client gone) without an end.
    const onClose = () => done(true, !res.readableEnded);
    res.on('data', onData);
    res.once('end', onEnd);
    res.once('error', onError);
    res.once('close', onClose);
  });
}

/** The response from its first byte: the held chunks, then (flowing again) the rest of `res`. */
export function release(res: Readable, held: Held): Readable {
  const body = new PassThrough();
  for (const chunk of held.chunks) body.write(chunk);
  if (held.ended) body.end();
  else res.pipe(body);
  return body;
}
