import assert from 'node:assert/strict';
import { mkdtempSync, statSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { execa } from 'execa';
import { repoRoot, stackBinDir } from '../../stack/binaries.ts';

const script = path.join(repoRoot, 'tools', 'stack', 'install.sh');

test('the install script is idempotent: a second run keeps both binaries and says so', async () => {
  await execa('bash', [script]);
  const before = ['temporal', 'ferretdb'].map((b) => statSync(path.join(stackBinDir, b)).mtimeMs);
  const { stdout } = await execa('bash', [script]);
  assert.match(stdout, /temporal 1\.9\.1 already installed/);
  assert.match(stdout, /ferretdb v1\.24\.2 already installed/);
  const after = ['temporal', 'ferretdb'].map((b) => statSync(path.join(stackBinDir, b)).mtimeMs);
  assert.deepEqual(after, before);
});

test('a missing toolchain gives one clear line naming what to install', async () => {
  // A PATH with the shell tools the script uses but neither python3 nor go.
  const bin = mkdtempSync(path.join(os.tmpdir(), 'mcpship-path-'));
  for (const tool of ['bash', 'dirname', 'mkdir', 'ln', 'rm', 'cp', 'chmod']) {
    const { stdout } = await execa('bash', ['-c', `command -v ${tool}`]);
    symlinkSync(stdout.trim(), path.join(bin, tool));
  }
  const copy = mkdtempSync(path.join(os.tmpdir(), 'mcpship-stack-'));
  await execa('cp', [script, path.join(copy, 'install.sh')]);
  const result = await execa(path.join(bin, 'bash'), [path.join(copy, 'install.sh')], { env: { PATH: bin }, extendEnv: false, reject: false });
  assert.equal(result.exitCode, 1);
  assert.deepEqual(result.stderr.trim().split('\n'), [
    "[stack:install] error: 'python3' is not installed; install Python 3 (with venv) and run this again.",
  ]);
});
