// Headless-browser check of the dev page (`make dev`): register through the widget form, chat as the visitor and
// the agent, and wait until both messages show in the CRM view, i.e. went Stream → webhook → HubSpot.
//
//   node infra/e2e/browser.mjs http://127.0.0.1:3000/
//
// Uses the system Chromium (Debian's `chromium`; CHROMIUM_PATH overrides) through playwright-core, so nothing is
// downloaded. Saves a screenshot for humans to target/e2e-screenshot.png (E2E_SCREENSHOT overrides), also on
// failure. Exits 0 on success, 1 on failure, 2 on wrong usage.

import { chromium } from 'playwright-core';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';

const STEP_TIMEOUT_MS = 20_000;
const url = process.argv[2];
const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const screenshotPath = process.env.E2E_SCREENSHOT || 'target/e2e-screenshot.png';

// This machine may have no network: without these, Chromium keeps trying to reach Google's services and can hang.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

if (!url) {
  console.error('usage: node infra/e2e/browser.mjs <dev server URL>');
  process.exit(2);
}

const log = (message) => console.log(`[browser] ${message}`);

async function screenshot(page) {
  try {
    await mkdir(dirname(screenshotPath), { recursive: true });
    await page.screenshot({ path: screenshotPath, fullPage: true });
    log(`screenshot: ${screenshotPath}`);
  } catch (error) {
    console.error(`[browser] could not save a screenshot: ${error.message}`);
  }
}

/** Waits until `#transcript` contains `text`. */
async function waitForTranscript(page, text) {
  await page.waitForFunction(
    (expected) => (document.getElementById('transcript')?.textContent ?? '').includes(expected),
    text,
    { timeout: STEP_TIMEOUT_MS },
  );
}

async function run(page) {
  const problems = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
  });

  log(`open ${url}`);
  await page.goto(url, { waitUntil: 'load' });
  await page.locator('#mode[data-mode="sandbox"], #mode[data-mode="live"]').waitFor();

  const stamp = Date.now();
  await page.fill('#firstName', 'Ada');
  await page.fill('#lastName', 'Lovelace');
  await page.fill('#email', `ada.${stamp}@example.com`);
  await page.click('#register');
  const status = page.locator('#registration-status[data-state="registered"], #registration-status[data-state="error"]');
  await status.waitFor();
  if ((await status.getAttribute('data-state')) !== 'registered') {
    throw new Error(`registration failed: ${await status.textContent()}`);
  }
  log(`registered visitor ${await page.textContent('#registration-status dd')}`);

  const question = `Hello from the browser check ${stamp}`;
  await page.fill('#visitor-text', question);
  await page.click('#visitor-send');
  await waitForTranscript(page, `(visitor): ${question}`);
  log('the visitor message reached the CRM view');

  const answer = `Thanks Ada, happy to help (${stamp})`;
  await page.fill('#agent-text', answer);
  await page.press('#agent-text', 'Enter');
  await waitForTranscript(page, `(agent): ${answer}`);
  log('the agent message reached the CRM view');

  // The conversation's timeline note holds both lines. Its sandboxed frame is another origin to this page, so
  // the check reads the HTML the frame was given.
  await page.waitForFunction(
    (expected) => [...document.querySelectorAll('#notes iframe')]
      .some((frame) => expected.every((text) => (frame.getAttribute('srcdoc') ?? '').includes(text))),
    [question, answer],
    { timeout: STEP_TIMEOUT_MS },
  );
  log('the timeline note shows the conversation');

  const logged = await page.locator('#conversation li').count();
  if (logged !== 2) throw new Error(`the conversation log shows ${logged} messages, expected 2`);
  const chatError = await page.locator('#chat-status[data-state="error"]').count();
  if (chatError) throw new Error(`the page shows a send error: ${await page.textContent('#chat-status')}`);
  if (problems.length) throw new Error(problems.join('\n'));
}

let browser;
let exitCode = 1;
try {
  browser = await chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
  // A fresh context: no cookies or storage from any earlier run.
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  const page = await context.newPage();
  try {
    await run(page);
    exitCode = 0;
    log('OK');
  } finally {
    await screenshot(page);
  }
} catch (error) {
  console.error(`[browser] FAILED: ${error.message}`);
} finally {
  await browser?.close().catch(() => {});
}
process.exit(exitCode);
