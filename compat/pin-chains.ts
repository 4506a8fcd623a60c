/**
 * Which chain a pinned client's requests take to the version that serves it. One rule for the
 * gateway (api/gateway/pinning.ts) and for replay (a captured pinned client's requests, replayed as
 * the gateway served them): each words a refusal for its own answer.
 */
import { compareVersions } from '../core/semver.ts';
import { buildChain, ChainError } from './chain.ts';
import type { LoadedTransform, TransformChain } from './types.ts';

/** Why a pin cannot be served. */
export type PinRefusal =
  /** The pinned version is not x.y.z. */
  | { case: 'invalid'; message: string }
  /** The client asks for a version newer than the one serving it. */
  | { case: 'newer'; message: string }
  /** No chain leads from the pinned version: a ChainError (nothing covers it, a gap), or the transforms did not load. */
  | { case: 'no-chain'; message: string; chainError: boolean };

export type PinResolution = { chain: TransformChain } | { refused: PinRefusal };

/**
 * The part of the rule that needs no transforms: a refusal, the empty chain of a client that asks
 * for the serving version, or 'older' — a client older than `served`, whose chain needs them.
 */
export function pinWithoutTransforms(service: string, asked: string, served: string): PinResolution | 'older' {
  let order: number;
  try {
    order = compareVersions(asked, served);
  } catch (err) {
    return { refused: { case: 'invalid', message: (err as Error).message } };
  }
  if (order > 0) return { refused: { case: 'newer', message: 'transforms only migrate older clients forward' } };
  if (order === 0) return { chain: { service, from: asked, to: served, steps: [] } };
  return 'older';
}

/**
 * The chain of a client pinned to `asked` and served by `served`. `transforms` are the serving
 * version's (each version carries every transform up to itself), or why they did not load; only a
 * client older than `served` needs them.
 */
export function resolvePin(service: string, asked: string, served: string, transforms: readonly LoadedTransform[] | Error): PinResolution {
  const first = pinWithoutTransforms(service, asked, served);
  if (first !== 'older') return first;
  const noChain = (err: Error): PinResolution => ({ refused: { case: 'no-chain', message: err.message, chainError: err instanceof ChainError } });
  if (transforms instanceof Error) return noChain(transforms);
  try {
    return { chain: buildChain(service, transforms, asked, served) };
  } catch (err) {
    return noChain(err as Error);
  }
}

/** A replayed pinned client's route: its chain, or the refusal as replay words it. */
export type PinRoute = { chain: TransformChain } | { refused: string };

/** The routes of one serving version, resolved once per pinned version. */
export class PinChains {
  private readonly routes = new Map<string, PinRoute>();

  /** `transforms`: the serving version's, or why they did not load. */
  constructor(
    private readonly service: string,
    readonly served: string,
    private readonly transforms: readonly LoadedTransform[] | Error,
  ) {}

  /** The route of a client that asked for `asked`. */
  route(asked: string): PinRoute {
    let route = this.routes.get(asked);
    if (!route) {
      const resolved = resolvePin(this.service, asked, this.served, this.transforms);
      route = 'chain' in resolved ? resolved : { refused: `version pin ${asked} cannot be served by ${this.served}: ${resolved.refused.case === 'newer' ? `${this.served} is older; ` : ''}${resolved.refused.message}` };
      this.routes.set(asked, route);
    }
    return route;
  }
}
