// Launches Debian's chromium (/usr/bin/chromium) headless through
// playwright-core, with a fresh profile directory and the flags this machine
// needs (it refuses Chromium's background connections). Shared by the browser
// tests and the flame-graph benchmark.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const CHROMIUM = process.env.GPA_CHROMIUM || '/usr/bin/chromium';
const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
  '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];

function loadPlaywright() {
  try {
    return require('playwright-core');
  } catch (e) {
    throw new Error('playwright-core is not installed: the build installs it ' +
      '(npm ci in the build tree) and ctest sets NODE_PATH to it');
  }
}

// Returns { context, userDataDir }; close the context and remove the
// directory when done.
async function launchChromium(options = {}) {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: apt-get install chromium (scripts/test.sh does it)`);
  }
  const { chromium } = loadPlaywright();
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpa-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1400, height: 900 },
    ...options,
  });
  return { context, userDataDir };
}

module.exports = { launchChromium };
