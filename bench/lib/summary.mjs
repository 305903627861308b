// The summary table at the end of `npm run bench`: every target in bench/results/*.json written
// since the run began (argv[2], an ISO time), with its ratio of p50s, both sides' p50/p99 and
// pass/miss. A miss is reported, never an exit code. argv[3]: the run's seconds, for the footer.
import { readdirSync, readFileSync } from 'node:fs';

const since = process.argv[2] ?? '1970-01-01T00:00:00.000Z';
const seconds = process.argv[3];
const dir = new URL('../results/', import.meta.url);
const files = (() => {
  try {
    return readdirSync(dir).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
})();
const ms = (v) => (typeof v !== 'number' || !Number.isFinite(v) ? '-' : v >= 100 ? v.toFixed(0) : v.toFixed(2));
const rows = [];
const stale = [];
for (const file of files) {
  let body;
  try {
    body = JSON.parse(readFileSync(new URL(file, dir), 'utf8'));
  } catch {
    continue;
  }
  if (!Array.isArray(body.targets)) continue;
  if (typeof body.at !== 'string' || body.at < since) {
    stale.push(file);
    continue;
  }
  for (const t of body.targets) rows.push({ file, ...t });
}
rows.sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }));

console.log('\n== summary (ratios of p50s; mcp-box and baseline p50 / p99 in ms)');
console.log('| # | target | measured | limit | mcp-box p50 / p99 | baseline p50 / p99 | result | bench |');
console.log('|---|---|---:|---:|---:|---:|---|---|');
for (const t of rows) {
  const verdict = t.pass === null || t.pass === undefined ? '-' : t.pass ? 'pass' : 'MISS';
  if (t.kind === 'ratio') {
    console.log(
      `| ${t.id} | ${t.title} | ${t.ratio.toFixed(2)}× | ≤ ${t.limit}× | ${ms(t.measured.p50)} / ${ms(t.measured.p99)} | ${ms(t.baseline.p50)} / ${ms(t.baseline.p99)} | ${verdict} | ${t.file} |`,
    );
  } else {
    console.log(
      `| ${t.id} | ${t.title} | ${ms(t.value)} ${t.unit} | ${typeof t.limit === 'number' ? `≤ ${t.limit} ${t.unit}` : '-'} | | | ${verdict} | ${t.file} |`,
    );
  }
}
const misses = rows.filter((t) => t.pass === false).length;
console.log(
  `${rows.length} targets, ${rows.filter((t) => t.pass === true).length} pass, ${misses} miss${seconds === undefined ? '' : `; benches took ${seconds} s`}`,
);
if (stale.length > 0) console.log(`(not from this run, left out: ${stale.join(', ')})`);
