import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EventDoc, MetricBucketDoc } from '../../core/documents.ts';
import { addExchange, emptyCounts } from '../../core/health.ts';
import { healthHistory, runsOf } from '../../api/routes/dashboard.ts';

function bucket(version: string, t: number, gatewayId: string, latencies: number[], failed = 0): MetricBucketDoc {
  const counts = emptyCounts();
  latencies.forEach((latencyMs, i) => addExchange(counts, { httpStatus: 200, latencyMs, timedOut: false, rpcErrors: 0, toolErrors: i < failed ? 1 : 0 }));
  return { service: 'calc', version, bucketStart: new Date(t), bucketMs: 10_000, gatewayId, ...counts };
}

test('health history sums a bucket over gateways, per version, in time order', () => {
  const { series, histogram } = healthHistory([
    bucket('1.0.1', 20_000, 'g1', [5]),
    bucket('1.0.0', 10_000, 'g1', [5, 5, 5], 1),
    bucket('1.0.0', 10_000, 'g2', [200]),
    bucket('1.0.0', 0, 'g1', [1, 1]),
  ]);
  assert.deepEqual(Object.keys(series), ['1.0.0', '1.0.1']);
  assert.deepEqual(series['1.0.0']!.map((p) => p.t), [0, 10_000]);
  const second = series['1.0.0']![1]!;
  assert.equal(second.requests, 4, 'both gateways of the bucket');
  assert.equal(second.successRate, 0.75);
  assert.equal(second.rate, 0.4, 'requests per second of a 10 s bucket');
  assert.ok(second.p99Ms! > 100, 'the slow exchange of g2 is in the percentiles');
  assert.equal(histogram['1.0.0']!.reduce((a, b) => a + b, 0), 6);
  assert.equal(histogram['1.0.1']!.reduce((a, b) => a + b, 0), 1);
});

test('runs group events by workflow and run, newest first, linked to Temporal Web UI', () => {
  const e = (seq: number, kind: string, workflowId?: string, runId?: string): EventDoc => ({ seq, time: new Date(seq * 1000), service: 'calc', version: '1.0.1', kind, status: 'info', ...(workflowId ? { workflowId } : {}), ...(runId ? { runId } : {}) });
  const runs = runsOf([e(3, 'PROMOTED', 'deploy/calc/1.0.1', 'r2'), e(1, 'VALIDATING', 'service/calc', 'r1'), e(2, 'DEPLOYMENT_STARTED', 'deploy/calc/1.0.1', 'r2'), e(4, 'SERVICE_ADDED')], (id) => `http://ui/wf/${encodeURIComponent(id)}`);
  assert.deepEqual(
    runs.map((r) => [r.workflowId, r.firstKind, r.lastKind, r.temporalUi]),
    [
      ['deploy/calc/1.0.1', 'DEPLOYMENT_STARTED', 'PROMOTED', 'http://ui/wf/deploy%2Fcalc%2F1.0.1/r2'],
      ['service/calc', 'VALIDATING', 'VALIDATING', 'http://ui/wf/service%2Fcalc/r1'],
    ],
  );
  assert.equal(runsOf([e(1, 'X', 'service/calc')], () => undefined)[0]!.temporalUi, undefined, 'no link without a UI');
});
