/**
 * A write refused for lack of space becomes a retryable DiskFull failure that says what was written
 * where; every other error passes unchanged. The ENOSPC here is real: /dev/full refuses every write.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { DISK_FULL, diskFullMessage, diskFullPauseMs, diskFullRetryable } from '../../core/disk-full.ts';

const WRITING = 'copying /srv/calc into /state/work/calc';

async function realEnospc(): Promise<NodeJS.ErrnoException> {
  const err = await writeFile('/dev/full', 'x').then(() => undefined, (e: NodeJS.ErrnoException) => e);
  assert.ok(err, 'a write to /dev/full fails');
  assert.equal(err.code, 'ENOSPC');
  return err;
}

test('ENOSPC and EDQUOT are disk full; the message names what was written, where, and that the disk is full', async () => {
  const enospc = diskFullMessage(await realEnospc(), WRITING);
  assert.match(enospc ?? '', /^copying \/srv\/calc into \/state\/work\/calc: the disk is full: ENOSPC: no space left on device/);
  const quota = Object.assign(new Error('EDQUOT: disk quota exceeded, write'), { code: 'EDQUOT' });
  assert.equal(diskFullMessage(quota, WRITING), `${WRITING}: the disk is full (quota exceeded): EDQUOT: disk quota exceeded, write`);
});

test('other errors are not disk full', () => {
  for (const err of [
    Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' }),
    new Error('no space left on device'),
    ApplicationFailure.nonRetryable('mcp.json: bad', 'ManifestError'),
    undefined,
    null,
    'ENOSPC',
  ]) {
    assert.equal(diskFullMessage(err, WRITING), undefined, String(err));
  }
});

test('a disk-full error becomes a retryable DiskFull failure carrying the error; others pass unchanged', async () => {
  const enospc = await realEnospc();
  const failure = await diskFullRetryable(WRITING, () => writeFile('/dev/full', 'x')).then(() => undefined, (e: unknown) => e);
  assert.ok(failure instanceof ApplicationFailure);
  assert.equal(failure.type, DISK_FULL);
  assert.equal(failure.nonRetryable, false);
  assert.equal(failure.message, diskFullMessage(enospc, WRITING));
  assert.equal((failure.cause as NodeJS.ErrnoException).code, 'ENOSPC');

  const other = Object.assign(new Error('EACCES'), { code: 'EACCES' });
  await assert.rejects(diskFullRetryable(WRITING, () => Promise.reject(other)), (e) => e === other);
  assert.equal(await diskFullRetryable(WRITING, async () => 7), 7);
});

test('the pauses before a retry start at 10 s, double, and stop growing at 5 min', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 40].map(diskFullPauseMs), [10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000]);
});
