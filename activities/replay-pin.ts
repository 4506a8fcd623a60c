/**
 * A pinned client's captured request replayed as the gateway serves that client, with the
 * gateway's own code (api/gateway/pinning.ts PinnedExchange): migrated forward from the version the
 * client asked for to the instance's version, and the answer migrated back, so that it is compared
 * as the client read it. A transform that throws answers with the gateway's error; a pin the
 * version cannot serve is refused as the gateway refuses it, and nothing is sent.
 */
import { PinnedExchange } from '../api/gateway/pinning.ts';
import type { PinChains } from '../compat/pin-chains.ts';
import { INVALID_REQUEST, jsonRpcError, type JsonRpcId, type JsonRpcMessage } from '../core/routing.ts';

export interface PinnedRequest {
  /** What the instance gets; absent when the gateway answers by itself (`answer`). */
  message?: JsonRpcMessage;
  answer?: JsonRpcMessage;
  /** An answer in the instance's version's shapes (the instance's, or the captured one) as the client reads it. */
  back(answer: JsonRpcMessage): JsonRpcMessage;
}

const asIs = (answer: JsonRpcMessage) => answer;

export function pinnedRequest(chains: PinChains, versionAsked: string | undefined, message: JsonRpcMessage): PinnedRequest {
  if (versionAsked === undefined) return { message, back: asIs };
  const route = chains.route(versionAsked);
  const id = (message.id ?? null) as JsonRpcId | null;
  if ('refused' in route) return { answer: { ...jsonRpcError(INVALID_REQUEST, `Invalid Request: ${route.refused}`, id) }, back: asIs };
  const exchange = new PinnedExchange(route.chain, () => {});
  const failed = exchange.forward([message], false);
  if (failed) return { answer: { ...failed }, back: asIs };
  return { message: exchange.body ? (JSON.parse(exchange.body.toString('utf8')) as JsonRpcMessage) : message, back: (answer) => exchange.backward(answer) };
}
