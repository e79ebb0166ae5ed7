#!/usr/bin/env node
// Browser test of the flame-graph page: the built agent renders a .col
// fixture (`gprofiler-agent flamegraph FILE`), Debian's chromium opens it from
// file:// with networking off, and the test drives the page as a person
// would: reads the root's sample count, searches, zooms, filters by process
// and container, and checks that hostile frame names stayed text.
//
//   node flamegraph.test.js <gprofiler-agent> <fixture.col> <output dir>
//
// Writes <output dir>/flamegraph-test.html and flamegraph-test.png.
'use strict';
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { pathToFileURL } = require('node:url');
const { launchChromium } = require('./chromium');

const [agent, fixture, outDir] = process.argv.slice(2);
if (!agent || !fixture || !outDir) {
  console.error('usage: node flamegraph.test.js <gprofiler-agent> <fixture.col> <output dir>');
  process.exit(2);
}

// -- what the fixture holds, computed here from the file ------------------------

// A .col stack line: "<index>;<container>;<comm>;frames <count>".
const LINE = /^(\d+);([^;]*);([^;]*);.* (\d+)$/;
const stacks = fs.readFileSync(fixture, 'utf8').split('\n').slice(1)
  .map((l) => LINE.exec(l)).filter(Boolean)
  .map((m) => ({ container: m[2], comm: m[3], count: Number(m[4]) }));
const sum = (f) => stacks.filter(f).reduce((a, s) => a + s.count, 0);
const total = sum(() => true);
const postgres = sum((s) => s.comm === 'postgres');
const worker2 = sum((s) => s.container === 'worker-2');
assert.ok(total > 0 && postgres > 0 && worker2 > 0, 'fixture has the stacks this test needs');

const XSS_FRAME = '</script><script>window.__gpaXss=1</script>';
const XSS_COMM = 'evil</script><b>comm</b>';
const SEARCHED = 'compute_checksum (/app/jobs.py:120)_[p]';
const ZOOMED = 'process_batch (/app/jobs.py:41)_[p]';

let step = 'start';
const log = (s) => {
  step = s;
  console.log(`# ${s}`);
};

async function main() {
  log('render the page with the agent');
  fs.mkdirSync(outDir, { recursive: true });
  const r = spawnSync(agent, ['flamegraph', fixture], { maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `agent failed: ${r.stderr}`);
  const htmlPath = path.join(outDir, 'flamegraph-test.html');
  fs.writeFileSync(htmlPath, r.stdout);
  const html = r.stdout.toString('utf8');
  assert.ok(!/<(script|link|img|iframe)[^>]+(src|href)\s*=\s*["']?(https?:)?\/\//i.test(html),
    'the page references no external resource');

  const { context, userDataDir } = await launchChromium();
  const requests = [];
  const blocked = [];
  const dialogs = [];
  const problems = [];
  try {
    await context.setOffline(true);
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith('file://')) return route.continue();
      blocked.push(url);
      return route.abort();
    });
    const page = await context.newPage();
    page.on('request', (req) => requests.push(req.url()));
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      d.dismiss().catch(() => {});
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
    });

    log('open it from file:// offline');
    await page.goto(pathToFileURL(htmlPath).href);
    await page.waitForSelector('html[data-gpa-drawn]', { timeout: 20000 });

    const frame = (name) => page.locator(`#gpa-chart g.frame[name="${cssString(name)}"]`);
    const width = async (name) => {
      const loc = frame(name);
      if ((await loc.count()) === 0) return 0;
      return Number(await loc.first().locator('rect').getAttribute('width'));
    };
    const svgWidth = async () => Number(await page.locator('#gpa-chart svg').getAttribute('width'));
    // Transitions animate widths: poll until the condition holds.
    const until = async (what, f, timeout = 5000) => {
      const end = Date.now() + timeout;
      let last;
      while (Date.now() < end) {
        last = await f();
        if (last === true) return;
        await page.waitForTimeout(50);
      }
      assert.fail(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
    };

    log('root frame holds every sample of the .col');
    assert.equal(await page.textContent('#gpa-total'), String(total));
    assert.equal(await page.textContent('#gpa-fact-samples'), total.toLocaleString('en-US'));
    await frame('all').hover();
    const tip = await page.textContent('#gpa-tip');
    assert.ok(tip.includes(`${total.toLocaleString('en-US')} samples`), `tooltip: ${tip}`);
    assert.ok(tip.includes('100.00% of shown'), `tooltip: ${tip}`);
    const full = await svgWidth();
    assert.ok(Math.abs((await width('all')) - full) < 1, 'root spans the chart');

    log('header: host, window, errors, skipped lines');
    assert.equal(await page.textContent('#gpa-host'), 'fg-test-host');
    assert.match(await page.textContent('#gpa-fact-window'), /2024-05-01T10:00:00.*2024-05-01T10:01:00/);
    assert.equal(await page.textContent('#gpa-fact-service'), 'checkout <svc>');
    assert.match(await page.textContent('#gpa-errors summary'), /^3 profiler errors/);
    const errors = await page.locator('#gpa-errors li').allTextContents();
    assert.ok(errors.some((e) => e.includes('[Profiling timed out: node-perf-map did not answer in 10s]')));
    assert.match(await page.textContent('#gpa-notes'), /3 malformed lines skipped/);

    log('search highlights the matching frame');
    await page.fill('#gpa-search', 'COMPUTE_check');
    await page.press('#gpa-search', 'Enter');
    await until('one match', async () => (await page.textContent('#gpa-matches')) === '1');
    assert.equal(await frame(SEARCHED).locator('rect').getAttribute('fill'), '#e600e6');
    assert.notEqual(await frame(ZOOMED).locator('rect').getAttribute('fill'), '#e600e6');
    assert.match(await page.textContent('#gpa-details'), /1 frame match/);

    log('click zooms into a frame');
    await frame(ZOOMED).click();
    await until('zoomed frame spans the chart', async () =>
      Math.abs((await width(ZOOMED)) - full) < 1 || (await width(ZOOMED)));
    assert.equal(await width('java'), 0, 'frames outside the zoomed subtree are hidden');
    assert.equal(await page.textContent('#gpa-zoomed'), ZOOMED);
    await frame(SEARCHED).hover();
    await page.waitForTimeout(500);
    await page.screenshot({ path: path.join(outDir, 'flamegraph-test-zoom.png') });
    await page.click('#gpa-clear');
    await until('highlight cleared', async () =>
      (await frame(SEARCHED).locator('rect').getAttribute('fill')) !== '#e600e6');
    await page.click('#gpa-reset');
    await until('zoom reset', async () => Math.abs((await width('all')) - full) < 1
      && (await width('java')) > 0 || (await width('java')));

    log('filter by process');
    await page.selectOption('#gpa-comm', 'postgres');
    await until('only postgres', async () => (await width('postgres')) > full - 1
      && (await frame('java').count()) === 0 || (await width('postgres')));
    await frame('all').hover();
    assert.ok((await page.textContent('#gpa-tip')).includes(`${postgres.toLocaleString('en-US')} samples`));
    assert.match(await page.textContent('#gpa-shown'), new RegExp(`showing ${postgres.toLocaleString('en-US')} of`));

    log('filter by container');
    await page.selectOption('#gpa-comm', { index: 0 });
    await page.selectOption('#gpa-container', 'worker-2');
    await until('only worker-2', async () => (await frame('python3').count()) === 1
      && (await frame('postgres').count()) === 0);
    await frame('all').hover();
    assert.ok((await page.textContent('#gpa-tip')).includes(`${worker2.toLocaleString('en-US')} samples`));
    await page.selectOption('#gpa-container', { index: 0 });
    await until('all processes back', async () => (await frame('java').count()) === 1);

    log('hostile names stay text');
    assert.equal(await page.evaluate(() => window.__gpaXss), undefined);
    assert.deepEqual(dialogs, []);
    assert.equal(await frame(XSS_FRAME).count(), 1, 'the XSS frame is drawn under its name');
    await frame(XSS_FRAME).hover();
    assert.ok((await page.textContent('#gpa-tip')).startsWith(XSS_FRAME));
    assert.equal(await page.locator(`#gpa-comm option[value="${cssString(XSS_COMM)}"]`).count(), 1);
    assert.equal(await page.locator('#gpa-chart b, #gpa-header b, #gpa-chart img').count(), 0,
      'no markup from the profile was parsed');

    log('screenshot');
    await page.mouse.move(0, 0);
    await page.waitForTimeout(1000); // let the last transition end
    await page.screenshot({ path: path.join(outDir, 'flamegraph-test.png'), fullPage: true });

    log('nothing left the machine');
    assert.deepEqual(blocked, [], 'no request other than file://');
    assert.ok(requests.length >= 1 && requests.every((u) => u.startsWith('file://')), requests.join(' '));
    assert.deepEqual(problems, [], 'no page errors, console errors or CSP violations');
  } finally {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
}

// Escapes a string for a CSS attribute selector in double quotes.
function cssString(s) {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
}

main().then(() => {
  console.log('1 passed, 0 failed');
}, (err) => {
  console.error(`FAILED at step "${step}": ${err && err.stack ? err.stack : err}`);
  console.log('0 passed, 1 failed');
  process.exit(1);
});
