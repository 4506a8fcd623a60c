/**
 * The fault suite (`npm run faults [scenario …]`): one mcpship system of its own (see rig.ts), one
 * calculator service, and for each fault in scenarios.ts continuous MCP load while a save is
 * validated and rolled out. Prints, per fault: calls sent / failed (beyond the spec's 404 → new
 * session), messages captured / lost, saves validated / lost, rollouts ended correctly. Exits 1
 * when a message, a save or a rollout was lost; failed calls are figures, not failures (a process
 * that is killed cannot answer).
 */
import { heading, machineLine, onceCleanup, table } from '../../bench/lib/common.ts';
import { captureFigures } from './ledger.ts';
import { waitFor } from '../support/wait.ts';
import { LedgerLoad, serving } from './load.ts';
import { FaultRig, GUARD_MS, SERVICE } from './rig.ts';
import { SCENARIOS } from './scenarios.ts';

const selected = process.argv.slice(2);
const scenarios = selected.length ? SCENARIOS.filter((s) => selected.includes(s.name)) : SCENARIOS;
if (scenarios.length === 0) {
  console.error(`no such scenario; choose from ${SCENARIOS.map((s) => s.name).join(', ')}`);
  process.exit(2);
}

const rig = new FaultRig();
const cleanup = onceCleanup(() => rig.stop());
let failures = 0;
try {
  console.log(await machineLine());
  await rig.start();
  console.log(`state disk: ${rig.stateDisk}; API ${rig.apiUrl}`);
  const first = await rig.events.lastSeq();
  await rig.addService();
  await rig.waitForEvent('the first version to go live', first, (e) => e.kind === 'PROMOTED');

  const rows: string[][] = [];
  for (const scenario of scenarios) {
    heading(`${scenario.name}: ${scenario.what}`);
    // Each fault starts from a serving system, not from what the previous one left (an open breaker).
    await waitFor('the service to serve before the fault', () => serving(rig.mcpUrl), GUARD_MS, 1000);
    const since = new Date();
    const load = new LedgerLoad(rig.mcpUrl);
    const result = await scenario.run(rig);
    const calls = await load.stop();
    const figures = load.figures;
    const capture = await captureFigures(rig, calls, since);
    const validated = result.saves.filter((s) => s.kind === 'validated').length;
    const refused = result.saves.filter((s) => s.kind === 'failed').length;
    const lostSaves = result.saves.filter((s) => s.kind === 'lost').length;
    const correct = result.rollouts.filter((r) => r.correct).length;
    console.log(`  ${result.note}`);
    for (const s of result.saves) if (s.kind === 'failed') console.log(`  save refused: ${s.reason.slice(0, 300)}`);
    if (capture.lost) console.log(`  messages lost: ${capture.lostRequests} requests, ${capture.lostResponses} responses of answered calls`);
    for (const r of result.rollouts) console.log(`  rollout of ${r.version}: ${r.end}${r.correct ? '' : ` — NOT correct: ${r.why}`}`);
    if (figures.errors.length) console.log(`  call errors: ${figures.errors.join(' | ')}`);
    const row = [
      scenario.name,
      String(figures.sent),
      String(figures.failed),
      String(figures.reopened),
      `${capture.captured} / ${capture.lost}`,
      `${validated}${refused ? ` (+${refused} refused)` : ''} / ${lostSaves}`,
      `${correct} / ${result.rollouts.length}${result.rollouts.length ? ` (${result.rollouts.map((r) => r.end).join(', ')})` : ''}`,
    ];
    rows.push(row);
    console.log(`  figures: calls sent ${row[1]}, failed ${row[2]}, 404 re-opened ${row[3]}; messages captured / lost ${row[4]}; saves validated / lost ${row[5]}; rollouts correct / ended ${row[6]}`);
    if (capture.lost > 0 || lostSaves > 0 || correct < result.rollouts.length) failures++;
  }
  heading(`fault suite: ${SERVICE}, ${rig.stateDisk}`);
  console.log(
    table(['fault', 'calls sent', 'failed', '404 re-opened', 'msgs captured / lost', 'saves validated / lost', 'rollouts correct / ended'], rows),
  );
} catch (err) {
  console.error(err);
  failures++;
} finally {
  await cleanup();
}
process.exit(failures ? 1 : 0);
