#!/usr/bin/env node
// Flame-graph benchmark: renders a large .col with the built agent and
// measures, in Debian's chromium (headless, offline, file://), the time from
// navigation start until the flame graph is drawn (the viewer sets
// data-gpa-drawn when the root frame spans the chart and has its label).
//
//   node flamegraph_bench.js <gprofiler-agent> <work dir> [STACKS] [RUNS]
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { pathToFileURL } = require('node:url');
const { launchChromium } = require('../format/browser/chromium');

const [agent, workDir, stacksArg, runsArg] = process.argv.slice(2);
if (!agent || !workDir) {
  console.error('usage: node flamegraph_bench.js <gprofiler-agent> <work dir> [STACKS] [RUNS]');
  process.exit(2);
}
const STACKS = Number(stacksArg || 50000);
const RUNS = Number(runsArg || 5);

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return { min: s[0], median: s[Math.floor(s.length / 2)], max: s[s.length - 1] };
};
const ms = (x) => `${x.toFixed(0)} ms`;
const show = (label, xs) => {
  const s = stats(xs);
  console.log(`${label.padEnd(50)} median ${ms(s.median).padStart(8)}   min ${ms(s.min).padStart(8)}   max ${ms(s.max).padStart(8)}`);
};

async function main() {
  fs.mkdirSync(workDir, { recursive: true });
  const col = path.join(workDir, `flamegraph-${STACKS}.col`);
  const html = path.join(workDir, `flamegraph-${STACKS}.html`);
  if (!fs.existsSync(col)) {
    const g = spawnSync(process.execPath, [path.join(__dirname, 'make_flamegraph_col.js'), col, String(STACKS)],
      { stdio: 'inherit' });
    if (g.status !== 0) throw new Error('generating the profile failed');
  }
  const colText = fs.readFileSync(col, 'utf8');
  const lines = colText.split('\n').filter((l) => l && !l.startsWith('#'));
  const samples = lines.reduce((a, l) => a + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  console.log(`profile: ${lines.length} stacks, ${samples} samples, ${(colText.length / 1e6).toFixed(1)} MB .col`);

  // 1. The agent renders the page (whole process: read, trie, JSON, HTML).
  const renders = [];
  let page;
  for (let i = 0; i < RUNS; i++) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(agent, ['flamegraph', col], { maxBuffer: 256 << 20 });
    renders.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (r.status !== 0) throw new Error(`agent failed: ${r.stderr}`);
    page = r.stdout;
  }
  fs.writeFileSync(html, page);
  const json = /<script type="application\/json" id="gpa-profile">([^<]*)<\/script>/.exec(page.toString('utf8'))[1];
  const data = JSON.parse(json);
  let nodes = 0;
  const todo = data.groups.map((g) => g[1]);
  while (todo.length) {
    const n = todo.pop();
    nodes++;
    for (let i = 2; i < n.length; i++) todo.push(n[i]);
  }
  console.log(`page: ${(page.length / 1e3).toFixed(0)} kB, of which data ${(json.length / 1e3).toFixed(0)} kB; ` +
    `${nodes} nodes after pruning below ${data.prune_threshold} samples`);
  show('agent: gprofiler-agent flamegraph (wall)', renders);

  // 2. Chromium: navigation start -> graph drawn, a fresh page per run.
  const { context, userDataDir } = await launchChromium();
  const drawn = [];
  const marks = { 'gpa-viewer-start': [], 'gpa-data-parsed': [], 'gpa-chart-built': [] };
  let frames = 0;
  try {
    await context.setOffline(true);
    await context.route('**/*', (route) =>
      route.request().url().startsWith('file://') ? route.continue() : route.abort());
    // Chromium may end when its last page closes: keep one open throughout.
    const keeper = await context.newPage();
    for (let i = 0; i < RUNS + 1; i++) {
      const p = await context.newPage();
      p.on('crash', () => console.error(`run ${i}: the page crashed`));
      await p.goto(pathToFileURL(html).href);
      await p.waitForSelector('html[data-gpa-drawn]', { timeout: 120000 });
      const m = await p.evaluate(() => ({
        drawn: Number(document.documentElement.getAttribute('data-gpa-drawn')),
        frames: Number(document.documentElement.getAttribute('data-gpa-frames')),
        marks: Object.fromEntries(performance.getEntriesByType('mark').map((e) => [e.name, e.startTime])),
      }));
      await p.close();
      if (i === 0) continue; // warm-up: the first page also starts the renderer
      drawn.push(m.drawn);
      for (const k of Object.keys(marks)) marks[k].push(m.marks[k]);
      frames = m.frames;
    }
    await keeper.close();
  } finally {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
  console.log(`chromium: ${frames} frames drawn (wider than 1 px) in a 1400 px viewport, ${RUNS} runs after a warm-up`);
  show('chromium: navigation start -> viewer script starts', marks['gpa-viewer-start']);
  show('chromium: navigation start -> data parsed', marks['gpa-data-parsed']);
  show('chromium: navigation start -> chart built (DOM)', marks['gpa-chart-built']);
  show('chromium: navigation start -> graph drawn', drawn);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
