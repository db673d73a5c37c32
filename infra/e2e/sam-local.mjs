// The widget against `sam local start-api` (make sam-local): a page holding only the embed tag, whose registration
// URL is the API SAM serves locally, in headless Chromium. A visitor registers through it and sends a message;
// `make sam-local` then checks the message reached the sandbox CRM through the webhook function SAM invoked.
//
//   node infra/e2e/sam-local.mjs <page URL> <e-mail> <message>
//
// Uses the system Chromium (Debian's `chromium`; CHROMIUM_PATH overrides) through playwright-core. Prints
// `[sam-local] OK` and exits 0 on success, 1 on failure, 2 on wrong usage.

import { chromium } from 'playwright-core';

// A registration is a container start and a cold start under SAM: slower than the dev server.
const STEP_TIMEOUT_MS = 60_000;
const [page_url, email, text] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
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

if (!page_url || !email || !text) {
  console.error('usage: node infra/e2e/sam-local.mjs <page URL> <e-mail> <message>');
  process.exit(2);
}
const log = (message) => console.log(`[sam-local] ${message}`);

const browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS });
let failed = false;
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const problems = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
  });
  await page.goto(page_url);
  const root = page.locator('[data-chat-sync-widget]');
  await root.getByRole('button', { name: 'Chat with us' }).click();
  await root.getByLabel('First name').fill('Grace');
  await root.getByLabel('Last name').fill('Hopper');
  await root.getByLabel('E-mail').fill(email);
  await root.getByRole('button', { name: 'Start chat' }).click();
  const conversation = root.getByRole('log', { name: 'Conversation', exact: true });
  await conversation.waitFor();
  log(`registered ${email} through sam local start-api`);
  await root.getByLabel('Message', { exact: true }).fill(text);
  await root.getByRole('button', { name: 'Send', exact: true }).click();
  await conversation.getByText(text).waitFor();
  log('the message is in the conversation');
  if (problems.length > 0) throw new Error(problems.join('\n'));
  log('OK');
} catch (error) {
  failed = true;
  console.error(`[sam-local] FAILED: ${error.message}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
