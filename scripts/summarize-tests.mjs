// Prints the closing line of a test run ("N passed, M failed, K skipped") from vitest's JSON
// report, and fails when the Docker integration suite did not really run (nothing ran, or
// anything in it was skipped): a skipped integration suite is a failure, not a pass.
import { readFileSync } from 'node:fs';

const file = process.argv[2] ?? '.test-results/vitest.json';
let report;
try {
  report = JSON.parse(readFileSync(file, 'utf8'));
} catch (err) {
  console.log(`no test report at ${file} (${err.message})`);
  console.log('0 passed, 1 failed');
  process.exit(1);
}

let passed = 0;
let failed = 0;
let skipped = 0;
let dockerRan = 0;
let dockerSkipped = 0;
for (const suite of report.testResults ?? []) {
  const isDocker = /\/test\/integration\//.test(suite.name);
  for (const t of suite.assertionResults ?? []) {
    if (t.status === 'passed') passed++;
    else if (t.status === 'failed') failed++;
    else skipped++;
    if (isDocker) {
      if (t.status === 'passed' || t.status === 'failed') dockerRan++;
      else dockerSkipped++;
    }
  }
  // A file that failed to load (e.g. its setup threw) has no assertions: count it as a failure.
  if ((suite.assertionResults ?? []).length === 0 && suite.status === 'failed') failed++;
}

let ok = failed === 0 && report.success !== false;
if (dockerRan === 0) {
  console.log('The Docker integration suite ran no test: that is a failure.');
  ok = false;
  failed++;
}
if (dockerSkipped > 0) {
  console.log(`${dockerSkipped} Docker integration test(s) were skipped: that is a failure.`);
  ok = false;
}
console.log(`docker integration tests run: ${dockerRan}`);
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(ok ? 0 : 1);
