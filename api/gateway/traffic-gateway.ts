import type { Client } from '@temporalio/client';
import { Registry } from 'prom-client';
import type { Config } from '../../core/config.ts';
import type { EventStore } from '../../core/events.ts';
import type { Logger } from '../../core/log.ts';
import type { Store } from '../../core/mongo.ts';
import { CircuitBreaker } from './breaker.ts';
import { CaptureWriter } from './capture.ts';
import { createGateway, type Gateway } from './gateway.ts';
import { MetricsRecorder } from './metrics.ts';
import { onAlert, onBreach } from './on-breach.ts';
import { Pinning } from './pinning.ts';
import { PromObserver } from './prom-observer.ts';
import { fanOut } from './traffic.ts';

export interface TrafficGateway {
  gateway: Gateway;
  metrics: MetricsRecorder;
  breaker: CircuitBreaker;
  capture?: CaptureWriter;
  pinning: Pinning;
  /** Prometheus metrics of this process (GET /metrics); the gateway's own are fed by PromObserver. */
  registry: Registry;
  close(): Promise<void>;
}

const ROUTING_REFRESH_MS = 2_000;

/** The gateway with its health monitors, circuit breaker and message capture wired together. */
export function createTrafficGateway(deps: { config: Config; store: Store; events: EventStore; log: Logger; temporal?: Client }): TrafficGateway {
  const { config, store, events } = deps;
  const log = deps.log.child({ component: 'gateway' });
  const metrics = new MetricsRecorder({ store, log });
  const breaker = new CircuitBreaker();
  const capture = config.gateway.capture.enabled ? CaptureWriter.fromConfig(config, store.messages, { log, events }) : undefined;
  const pinning = new Pinning({ store, log, gatewayId: metrics.gatewayId, pins: config.gateway.pins });
  const registry = new Registry();
  const prom = new PromObserver({ registry, breaker, ...(capture ? { capture } : {}) });
  const gateway = createGateway({ config, store, log, events, observer: fanOut(metrics, breaker, prom, ...(capture ? [capture] : [])), breaker, pinning });

  const handleBreach = onBreach({ store, events, cache: gateway.cache, log, ...(deps.temporal ? { temporal: deps.temporal } : {}) });
  breaker.onTrip((trip) => void handleBreach(trip).catch((err: unknown) => log.error({ err, service: trip.service }, 'breach handling failed')));
  const handleAlert = onAlert({ events });
  breaker.onAlert((alert) => void handleAlert(alert).catch((err: unknown) => log.error({ err, service: alert.service }, 'breaker alert not recorded')));

  // Thresholds come with each service's rollout settings, and the stable version (the baseline a
  // canary is judged against) with its routing; any process may change either.
  const refreshRouting = async () => {
    for (const doc of await store.routing.find({}, { projection: { _id: 0, service: 1, stable: 1, breaker: 1 } }).toArray()) {
      breaker.setStable(doc.service, doc.stable);
      if (!doc.breaker) continue;
      try {
        breaker.setThresholds(doc.service, doc.breaker);
      } catch (err) {
        log.warn({ service: doc.service, err: (err as Error).message }, 'invalid breaker thresholds ignored');
      }
    }
  };
  const timer = setInterval(() => void refreshRouting().catch(() => {}), ROUTING_REFRESH_MS);
  void refreshRouting().catch(() => {});

  return {
    gateway,
    metrics,
    breaker,
    ...(capture ? { capture } : {}),
    pinning,
    registry,
    async close() {
      clearInterval(timer);
      await gateway.close();
      await metrics.close();
      await capture?.close();
      await pinning.close();
    },
  };
}
