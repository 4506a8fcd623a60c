import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validationNow } from '../../api/routes/dashboard.ts';

const at = (seq: number) => ({ seq });

test('a save is waiting for disk space from its VALIDATION_WAITING until something ends it or a newer save starts', () => {
  // VALIDATING 1, VALIDATION_WAITING 2: waiting.
  assert.deepEqual(validationNow(at(1), null, at(2)), { validating: true, waitingForSpace: true });
  // An earlier save ended at 0; this one waits.
  assert.deepEqual(validationNow(at(1), at(0), at(2)), { validating: true, waitingForSpace: true });
  // Its retry staged it (end 3): done.
  assert.deepEqual(validationNow(at(1), at(3), at(2)), { validating: false, waitingForSpace: false });
  // A newer save (VALIDATING 4) replaced the waiting one (2): validating, not waiting.
  assert.deepEqual(validationNow(at(4), at(3), at(2)), { validating: true, waitingForSpace: false });
  assert.deepEqual(validationNow(at(4), null, at(2)), { validating: true, waitingForSpace: false });
  // No wait ever, or no save.
  assert.deepEqual(validationNow(at(1), null, null), { validating: true, waitingForSpace: false });
  assert.deepEqual(validationNow(null, null, null), { validating: false, waitingForSpace: false });
});
