/**
 * The chains a replay sends pinned clients' traffic through, resolved as the gateway resolves a pin
 * (api/gateway/pinning.ts): a client that asks for the serving version needs no transform; one that
 * asks for a newer version, or for one the chain does not cover, is refused with the reason.
 */
import { compareVersions } from '../core/semver.ts';
import { buildChain } from './chain.ts';
import type { LoadedTransform, TransformChain } from './types.ts';

export type PinRoute = { chain: TransformChain } | { refused: string };

export class PinChains {
  private readonly routes = new Map<string, PinRoute>();

  /** `transforms`: the serving version's (each version carries every transform up to itself), or why they did not load. */
  constructor(
    private readonly service: string,
    readonly served: string,
    private readonly transforms: readonly LoadedTransform[] | Error,
  ) {}

  /** The route of a client that asked for `asked`. */
  route(asked: string): PinRoute {
    let route = this.routes.get(asked);
    if (!route) {
      route = this.resolve(asked);
      this.routes.set(asked, route);
    }
    return route;
  }

  private resolve(asked: string): PinRoute {
    const refused = (why: string): PinRoute => ({ refused: `version pin ${asked} cannot be served by ${this.served}: ${why}` });
    try {
      if (compareVersions(asked, this.served) > 0) return refused(`${this.served} is older; transforms only migrate older clients forward`);
      if (compareVersions(asked, this.served) === 0) return { chain: { service: this.service, from: asked, to: this.served, steps: [] } };
      if (this.transforms instanceof Error) return refused(this.transforms.message);
      return { chain: buildChain(this.service, this.transforms, asked, this.served) };
    } catch (err) {
      return refused((err as Error).message);
    }
  }
}
