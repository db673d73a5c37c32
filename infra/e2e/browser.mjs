// Headless-browser checks of the chat widget and the dev page (`make dev`), as a visitor and an agent would use them:
//
//   node infra/e2e/browser.mjs http://127.0.0.1:3000
//
// 1. /embed-example.html (a page with only the embed tag): keyboard only, open the launcher, the form's checks give
//    the API's codes, register, send; the agent answers through Stream's SDK (from Node) and the reply appears live;
//    network loss shows "Reconnecting" and recovers; reload keeps the history; the transcript reaches the sandbox CRM.
// 2. Sessions: Stream unreachable at load (kept, retried, connected), then a stored session past its expiresAt, a token Stream refuses as expired, one it refuses as forged, the
//    conversation erased in Stream while open, the visitor erased in Stream (tokens revoked), and the expiry passing
//    while the conversation is open each lead back to the form with their message.
// 3. A shared computer: person A, signed in to the site (the page carries A's identity token), chats; the next
//    person's page (B's token), a signed-out page after a signed-in chat, and a signed-in page after an anonymous chat
//    each get a fresh form, never the stored chat; B's own chat survives a renewed token; "End chat" forgets the
//    session, so the next load shows the form.
// 4. Agents (issue 23): Ada and Bob sign in to the agent console (/agent/) through the sandbox identity provider's
//    page; two visitors write (the demo page's widget, the embed example's); Ada sees both conversations arrive live,
//    with unread counts and the total in the tab title, assigns one to herself and answers (Enter); the visitor sees
//    the reply live (and each sees the other typing); Bob sees it assigned to Ada; closing moves it to "Closed"; the demo page's CRM view shows Ada's
//    line with her name; signing out returns to the sign-in.
//
// Uses the system Chromium (Debian's `chromium`; CHROMIUM_PATH overrides) through playwright-core, so nothing is
// downloaded. STREAM_SECRET is the sandbox Stream's secret (to sign the tokens of step 2); IDENTITY_SECRET is the dev
// server's (to sign the site's identity tokens of step 3, as a site's backend does). Saves screenshots for
// humans next to E2E_SCREENSHOT (default target/e2e-screenshot.png), also on failure. Exits 0 on success, 1 on
// failure, 2 on wrong usage.

import { chromium } from 'playwright-core';
import { StreamChat } from 'stream-chat';
import { createHmac } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';

const STEP_TIMEOUT_MS = 20_000;
/** A conversation's note follows the property once the conversation has paused for its wait (FLUSH_NOTE_WAIT_MS,
 * 20 s by default, counted here from the last message, which the step before waited for), at the dev server's next
 * sweep (every 5 s): a step's time on top of the wait. */
const NOTE_TIMEOUT_MS = 20_000 + STEP_TIMEOUT_MS;
/** The SDK reports a lost connection only after 5 s without one. */
const RECONNECT_NOTICE_TIMEOUT_MS = 15_000;
/** The SDK gives up a first connection after 15 s; the widget retries 2 s later. */
const UNREACHABLE_TIMEOUT_MS = 30_000;
const base = (process.argv[2] ?? '').replace(/\/$/, '');
const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const screenshotPath = process.env.E2E_SCREENSHOT || 'target/e2e-screenshot.png';
const streamSecret = process.env.STREAM_SECRET;
const identitySecret = process.env.IDENTITY_SECRET;

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

if (!base || !streamSecret || !identitySecret) {
  console.error(
    'usage: STREAM_SECRET=<sandbox Stream secret> IDENTITY_SECRET=<the dev server\'s> node infra/e2e/browser.mjs <dev server URL>',
  );
  process.exit(2);
}

const log = (message) => console.log(`[browser] ${message}`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function screenshot(page, name) {
  const path = screenshotPath.replace(/\.png$/, name ? `-${name}.png` : '.png');
  try {
    await mkdir(dirname(path), { recursive: true });
    await page.screenshot({ path, fullPage: true });
    log(`screenshot: ${path}`);
  } catch (error) {
    console.error(`[browser] could not save a screenshot: ${error.message}`);
  }
}

/** Fails the run on any script error or console error of the page. */
function watchProblems(page) {
  const problems = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
  });
  return problems;
}

/** The widget's parts, found the way a person (or a screen reader) finds them: by role and label. */
function widgetOf(page) {
  const root = page.locator('[data-chat-sync-widget]');
  return {
    root,
    launcher: root.getByRole('button', { name: 'Chat with us' }),
    dialog: root.getByRole('dialog'),
    firstName: root.getByLabel('First name'),
    lastName: root.getByLabel('Last name'),
    email: root.getByLabel('E-mail'),
    start: root.getByRole('button', { name: 'Start chat' }),
    end: root.getByRole('button', { name: 'End chat' }),
    log: root.getByRole('log', { name: 'Conversation', exact: true }),
    message: root.getByLabel('Message', { exact: true }),
    send: root.getByRole('button', { name: 'Send', exact: true }),
    alert: root.getByRole('alert'),
    notice: root.getByRole('status'),
  };
}

/** The id of the focused element inside the widget's shadow root ('' when focus is elsewhere). */
async function focusedInWidget(page) {
  return page.evaluate(() => {
    const host = document.querySelector('[data-chat-sync-widget]');
    const active = host?.shadowRoot?.activeElement;
    return active ? active.id || active.getAttribute('class') || active.tagName : '';
  });
}

async function waitForFocus(page, id) {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  let focused = '';
  while (Date.now() < deadline) {
    focused = await focusedInWidget(page);
    if (focused === id) return;
    await sleep(50);
  }
  throw new Error(`focus is on "${focused}", expected "${id}"`);
}

/** The widget's stored session (localStorage), as registration answered it. */
async function storedSession(page) {
  return page.evaluate(() => {
    const key = Object.keys(localStorage).find((name) => name.startsWith('chat-sync-widget:v1:'));
    return key ? { key, session: JSON.parse(localStorage.getItem(key)) } : null;
  });
}

async function editStoredSession(page, change) {
  const stored = await storedSession(page);
  check(stored, 'no session in localStorage');
  const session = { ...stored.session, ...change };
  await page.evaluate(([key, value]) => localStorage.setItem(key, value), [stored.key, JSON.stringify(session)]);
}

/** An HS256 JWT, as Stream's tokens are. */
function jwt(claims, secret) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const unsigned = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}`;
  return `${unsigned}.${createHmac('sha256', secret).update(unsigned).digest('base64url')}`;
}

/** A Stream user token (user_id, iat, exp), as registration signs them. */
function userToken(userId, secret, { iat, exp }) {
  return jwt({ user_id: userId, iat, exp }, secret);
}

/** A server-side call to the sandbox Stream (what the erasure path does), with a server token. */
async function streamAsServer(method, session, path, body) {
  const separator = path.includes('?') ? '&' : '?';
  const url = `${session.streamBaseUrl}${path}${separator}api_key=${session.apiKey}`;
  const headers = { authorization: jwt({ server: true }, streamSecret), 'stream-auth-type': 'jwt' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  check(response.ok, `${method} ${url} answered ${response.status}: ${text}`);
  return text ? JSON.parse(text) : {};
}

/** Hard-deletes a user in Stream as its API does it: `POST /users/delete`, then its task until it completed. */
async function deleteStreamUser(session, userId) {
  const { task_id: taskId } = await streamAsServer('POST', session, '/users/delete', {
    user_ids: [userId], user: 'hard', messages: 'hard', conversations: 'hard',
  });
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  for (;;) {
    const task = await streamAsServer('GET', session, `/tasks/${taskId}`);
    if (task.status === 'completed') return;
    check(task.status !== 'failed' && Date.now() < deadline, `deleting ${userId}: task ${JSON.stringify(task)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const AGENT_PASSWORD = 'sandbox-password';

/**
 * An agent's ID token from the sandbox identity provider, the way the console gets one (authorization code + PKCE),
 * without a browser: the sign-in form posted, the code taken from the redirect, exchanged with the verifier.
 */
async function signInAsAgent(email) {
  const config = await (await fetch(`${base}/agent/config.json`)).json();
  const discovery = await (await fetch(`${config.issuer}/.well-known/openid-configuration`)).json();
  const { createHash, randomBytes } = await import('node:crypto');
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const redirectUri = `${base}/agent/`;
  const form = new URLSearchParams({
    client_id: config.clientId, redirect_uri: redirectUri, response_type: 'code', scope: 'openid email profile',
    state: 'node', code_challenge: challenge, code_challenge_method: 'S256', email, password: AGENT_PASSWORD,
  });
  const signedIn = await fetch(discovery.authorization_endpoint, {
    method: 'POST', body: form, redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  check(signedIn.status === 302, `the sandbox identity provider answered ${signedIn.status} to ${email}'s sign-in`);
  const code = new URL(signedIn.headers.get('location')).searchParams.get('code');
  const tokens = await (await fetch(discovery.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code', code, redirect_uri: redirectUri, client_id: config.clientId, code_verifier: verifier,
    }),
  })).json();
  check(typeof tokens.id_token === 'string', `no ID token: ${JSON.stringify(tokens)}`);
  return tokens.id_token;
}

/** An agent (Bob), through Stream's SDK in Node, with the session the console would open. */
async function connectAgent() {
  const idToken = await signInAsAgent('bob@agents.example');
  const response = await fetch(`${base}/agent-sessions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${idToken}` },
  });
  check(response.ok, `POST /agent-sessions answered ${response.status}`);
  const session = await response.json();
  const client = new StreamChat(session.apiKey, {
    baseURL: session.streamBaseUrl ?? undefined,
    allowServerSideConnect: true,
  });
  await client.connectUser({ id: session.userId }, session.token);
  return client;
}

/** Polls the dev server's CRM view until the contact's transcript holds every line. */
async function waitForTranscript(conversation, lines) {
  const query = new URLSearchParams({ channelType: conversation.channelType, channelId: conversation.channelId });
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  let transcript = '';
  while (Date.now() < deadline) {
    const response = await fetch(`${base}/dev/transcript?${query}`);
    if (response.ok) {
      transcript = (await response.json()).transcript ?? '';
      if (lines.every((line) => transcript.includes(line))) return transcript;
    }
    await sleep(250);
  }
  throw new Error(`the CRM transcript lacks some of ${JSON.stringify(lines)}; last:\n${transcript}`);
}

async function pressTab(page, times = 1) {
  for (let i = 0; i < times; i += 1) await page.keyboard.press('Tab');
}

/** Scenario 1: the embed example, keyboard only. */
async function embedExample(context, stamp) {
  const page = await context.newPage();
  const problems = watchProblems(page);
  const widget = widgetOf(page);
  try {
    log(`open ${base}/embed-example.html`);
    await page.goto(`${base}/embed-example.html`, { waitUntil: 'load' });
    await widget.launcher.waitFor();

    // The page's greedy CSS (32px serif, pink buttons) does not reach into the shadow root.
    const launcherStyle = await widget.launcher.evaluate((button) => {
      const style = getComputedStyle(button);
      return { font: style.fontSize, background: style.backgroundColor };
    });
    // The page's CSP allows its own inline style by hash and no other: the site's style applies to its heading, the
    // widget's (a constructed stylesheet) to the widget.
    const hostFont = await page.locator('h1').evaluate((h1) => getComputedStyle(h1).fontSize);
    check(hostFont === '32px', `the host page's own style is not in force (h1 at ${hostFont}): check the page's CSP`);
    check(launcherStyle.font !== '32px' && launcherStyle.background === 'rgb(36, 86, 214)',
      `the widget is not styled as its own: ${JSON.stringify(launcherStyle)}`);

    // Keyboard only: Tab reaches the launcher, Enter opens the panel with focus in the first field.
    await pressTab(page);
    await waitForFocus(page, 'launcher');
    await page.keyboard.press('Enter');
    await widget.dialog.waitFor();
    check((await widget.launcher.getAttribute('aria-expanded')) === 'true', 'the launcher does not say it is expanded');
    await waitForFocus(page, 'firstName');

    // Escape closes and gives focus back to the launcher; Enter opens again.
    await page.keyboard.press('Escape');
    await widget.dialog.waitFor({ state: 'hidden' });
    await waitForFocus(page, 'launcher');
    await page.keyboard.press('Enter');
    await waitForFocus(page, 'firstName');

    // The form's own checks answer with the API's codes for the same input, at the same field.
    const cases = [
      { form: { firstName: '', lastName: 'Lovelace', email: 'ada@example.com' }, field: 'firstName' },
      { form: { firstName: 'Ada', lastName: 'x'.repeat(101), email: 'ada@example.com' }, field: 'lastName' },
      { form: { firstName: 'Ada', lastName: 'Lovelace', email: 'ada@example' }, field: 'email' },
      { form: { firstName: 'Ada', lastName: 'Lovelace', email: '.ada@example.com' }, field: 'email' },
      // Characters, not UTF-16 units, count towards the 100 (as Rust's chars() does).
      { form: { firstName: '😀'.repeat(101), lastName: 'Lovelace', email: 'ada@example.com' }, field: 'firstName' },
      { form: { firstName: 'Ada', lastName: 'Love\u0007lace', email: 'ada@example.com' }, field: 'lastName' },
      { form: { firstName: '   ', lastName: 'Lovelace', email: 'ada@example.com' }, field: 'firstName' },
      { form: { firstName: 'Ada', lastName: 'Lovelace', email: 'ada lovelace@example.com' }, field: 'email' },
      { form: { firstName: 'Ada', lastName: 'Lovelace', email: 'ada@-example.com' }, field: 'email' },
      { form: { firstName: 'Ada', lastName: 'Lovelace', email: 'ada@example.c0m' }, field: 'email' },
      { form: { firstName: 'Ada', lastName: 'Lovelace', email: `${'a'.repeat(65)}@example.com` }, field: 'email' },
    ];
    for (const { form, field } of cases) {
      await widget.firstName.fill(form.firstName);
      await widget.lastName.fill(form.lastName);
      await widget.email.fill(form.email);
      await widget.email.press('Enter');
      const input = widget.root.locator(`#${field}`);
      await page.waitForFunction((el) => el.getAttribute('aria-invalid') === 'true', await input.elementHandle());
      const shown = await widget.root.locator(`#${field}-error`).evaluate((el) => ({
        code: el.dataset.code, text: el.textContent,
      }));
      const response = await fetch(`${base}/registrations`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(form),
      });
      const api = { status: response.status, ...(await response.json()) };
      check(api.status === 400 && api.field === field && api.code === shown.code,
        `for ${JSON.stringify(form)} the widget shows ${JSON.stringify(shown)}, the API answers ${JSON.stringify(api)}`);
      await waitForFocus(page, field);
    }
    log('the form\'s checks match the API\'s codes, at the right field');

    // Register by keyboard: type, Tab, type, Tab, type, Enter.
    await widget.firstName.fill('');
    await widget.lastName.fill('');
    await widget.email.fill('');
    await widget.firstName.focus();
    await page.keyboard.type('Ada');
    await pressTab(page);
    await page.keyboard.type('Lovelace');
    await pressTab(page);
    await page.keyboard.type(`ada.${stamp}@example.com`);
    await page.keyboard.press('Enter');
    await widget.log.waitFor();
    await waitForFocus(page, 'message');
    const stored = await storedSession(page);
    check(stored?.session?.customerToken, 'the session was not stored');
    const conversation = stored.session;
    log(`registered visitor ${conversation.customerId} in ${conversation.channelType}:${conversation.channelId}`);

    const question = `Hello from the widget ${stamp}`;
    await page.keyboard.type(question);
    await page.keyboard.press('Enter');
    await widget.log.getByText(question).waitFor();
    check((await widget.message.inputValue()) === '', 'the message box was not emptied after sending');
    log('the visitor\'s message is in the log');

    // The agent answers through the SDK; the reply appears without a reload.
    const agent = await connectAgent();
    try {
      const channel = agent.channel(conversation.channelType, conversation.channelId);
      await channel.watch();
      check(channel.state.messages.some((message) => message.text === question),
        'the agent does not see the visitor\'s message');
      // Stream takes messages from members: the agent joins, as the console does before answering.
      await channel.addMembers([agent.userID]);
      const answer = `Happy to help, Ada (${stamp})`;
      await channel.sendMessage({ text: answer });
      await widget.log.getByText(answer).waitFor();
      log('the agent\'s reply arrived live');

      // Network loss: "Reconnecting", then back, and live again.
      await context.setOffline(true);
      await widget.notice.getByText('Reconnecting').waitFor({ timeout: RECONNECT_NOTICE_TIMEOUT_MS });
      log('offline: the widget says it is reconnecting');
      await context.setOffline(false);
      await widget.notice.getByText('Reconnecting').waitFor({ state: 'hidden' });
      const after = `Still there after the outage? (${stamp})`;
      await channel.sendMessage({ text: after });
      await widget.log.getByText(after).waitFor();
      log('back online: the connection recovered and replies arrive live again');

      // A reply while the panel is closed shows on the launcher, and opening the panel reads it.
      await widget.message.press('Escape');
      await widget.dialog.waitFor({ state: 'hidden' });
      const unread = `Are you still there? (${stamp})`;
      await channel.sendMessage({ text: unread });
      await widget.root.getByRole('button', { name: 'Chat with us (1 new message)' }).waitFor();
      await page.keyboard.press('Enter');
      await widget.log.getByText(unread).waitFor();
      check((await widget.launcher.getAttribute('aria-label')) === 'Chat with us', 'the unread count stayed after opening');
      log('a reply while closed is counted on the launcher until the panel opens');

      // Reload: the session and the history are back, without the form.
      await page.reload({ waitUntil: 'load' });
      await widget.launcher.click();
      for (const text of [question, answer, after, unread]) await widget.log.getByText(text).waitFor();
      check(!(await widget.firstName.isVisible()), 'the form shows after a reload of a live session');
      log('after a reload the history is there');

      await waitForTranscript(conversation, [`(visitor): ${question}`, `(agent): ${answer}`, `(agent): ${after}`]);
      log('the transcript reached the sandbox CRM');
    } finally {
      await agent.disconnectUser();
    }
    check(problems.length === 0, problems.join('\n'));
    return page;
  } catch (error) {
    await screenshot(page, 'embed');
    throw error;
  }
}

/** Scenario 2: sessions that must lead back to the form, each with its message. */
async function expiry(page) {
  const widget = widgetOf(page);
  const stored = await storedSession(page);
  const userId = stored.session.customerId;
  const now = Math.floor(Date.now() / 1000);
  const farFuture = new Date(Date.now() + 3_600_000).toISOString();
  const cases = [
    {
      what: 'a stored session past its expiresAt',
      change: { expiresAt: new Date(Date.now() - 1000).toISOString() },
      message: 'expired',
    },
    {
      what: 'a token Stream refuses as expired',
      change: { customerToken: userToken(userId, streamSecret, { iat: now - 120, exp: now - 60 }), expiresAt: farFuture },
      message: 'expired',
    },
    {
      what: 'a token Stream refuses as forged (a revoked session)',
      change: { customerToken: userToken(userId, 'not-the-secret', { iat: now, exp: now + 3600 }), expiresAt: farFuture },
      message: 'ended',
    },
  ];
  for (const { what, change, message } of cases) {
    await page.evaluate(([key, value]) => localStorage.setItem(key, value), [stored.key, JSON.stringify(stored.session)]);
    await editStoredSession(page, change);
    await page.reload({ waitUntil: 'load' });
    await widget.launcher.click();
    await widget.alert.getByText(message).waitFor();
    await waitForFocus(page, 'firstName');
    check((await storedSession(page)) === null, `${what}: the dead session is still stored`);
    log(`${what}: back to the form, saying "${(await widget.alert.textContent()).trim()}"`);
  }

  // Stream unreachable when the page loads (every websocket to it closed at once): the session is kept, the widget
  // says so and tries again, and connects once Stream answers.
  let streamDown = true;
  await page.routeWebSocket(/\/connect\?/, (ws) => {
    if (streamDown) ws.close();
    else ws.connectToServer();
  });
  await page.evaluate(([key, value]) => localStorage.setItem(key, value), [stored.key, JSON.stringify(stored.session)]);
  await page.reload({ waitUntil: 'load' });
  await widget.launcher.click();
  await widget.notice.getByText('cannot be reached').waitFor({ timeout: UNREACHABLE_TIMEOUT_MS });
  check((await storedSession(page)) !== null, 'a session that could not connect was dropped');
  streamDown = false;
  await widget.log.waitFor({ timeout: UNREACHABLE_TIMEOUT_MS });
  await waitForFocus(page, 'message');
  log('Stream unreachable at load: the widget said so, kept the session and connected once Stream answered');

  // Last, since they end the conversation for good. The conversation erased in Stream while the visitor watches it:
  // the widget goes back to the form at once.
  await page.evaluate(([key, value]) => localStorage.setItem(key, value), [stored.key, JSON.stringify(stored.session)]);
  await page.reload({ waitUntil: 'load' });
  await widget.launcher.click();
  await widget.log.waitFor();
  await streamAsServer('DELETE', stored.session,
    `/channels/${stored.session.channelType}/${stored.session.channelId}?hard_delete=true`);
  await widget.alert.getByText('ended').waitFor();
  await waitForFocus(page, 'firstName');
  check((await storedSession(page)) === null, 'the erased conversation\'s session is still stored');
  log(`the conversation erased in Stream while open: back to the form, saying "${(await widget.alert.textContent()).trim()}"`);

  // The visitor erased in Stream (its tokens are revoked).
  await page.evaluate(([key, value]) => localStorage.setItem(key, value), [stored.key, JSON.stringify(stored.session)]);
  await deleteStreamUser(stored.session, stored.session.customerId);
  await page.reload({ waitUntil: 'load' });
  await widget.launcher.click();
  await widget.alert.getByText('ended').waitFor();
  check((await storedSession(page)) === null, 'the erased visitor\'s session is still stored');
  log(`a visitor erased in Stream: back to the form, saying "${(await widget.alert.textContent()).trim()}"`);
}

/** Scenario 2b: the token's expiry passes while the conversation is open (the page's clock is moved on a day). */
async function expiresWhileOpen(context, stamp) {
  const page = await context.newPage();
  const widget = widgetOf(page);
  try {
    await page.clock.install();
    await page.goto(`${base}/embed-example.html`, { waitUntil: 'load' });
    await widget.launcher.click();
    await widget.firstName.fill('Alan');
    await widget.lastName.fill('Turing');
    await widget.email.fill(`alan.${stamp}@example.com`);
    await widget.start.click();
    await widget.message.waitFor();
    await page.clock.fastForward('24:00:01');
    await widget.alert.getByText('expired').waitFor();
    check((await storedSession(page)) === null, 'the expired session is still stored');
    log(`the token expired while the conversation was open: back to the form, saying "${(await widget.alert.textContent()).trim()}"`);
  } catch (error) {
    await screenshot(page, 'expires-while-open');
    throw error;
  }
}

/**
 * The identity token a site's backend puts in the page of its signed-in user (docs/security.md: identity), valid an
 * hour.
 */
function identityToken(email) {
  return jwt({ email, exp: Math.floor(Date.now() / 1000) + 3600 }, identitySecret);
}

/** Scenario 3: one browser, several people; the stored session is bound to who the page says is signed in. */
async function sharedComputer(context, stamp) {
  const page = await context.newPage();
  const problems = watchProblems(page);
  const widget = widgetOf(page);
  // The site's page for whoever is signed in now: the embed example with their token on the tag (the dev server puts
  // ?identityToken= there, as a site's template would), or none. Served by the dev server itself, not faked here, so
  // the page keeps its address and policies.
  const load = async (token) => {
    const query = token === null ? '' : `?${new URLSearchParams({ identityToken: token })}`;
    await page.goto(`${base}/embed-example.html${query}`, { waitUntil: 'load' });
    await widget.launcher.click();
  };
  const chat = async (first, email, token, text) => {
    await load(token);
    await widget.firstName.fill(first);
    await widget.lastName.fill('Tester');
    await widget.email.fill(email);
    await widget.start.click();
    await widget.log.waitFor();
    await widget.message.fill(text);
    await widget.send.click();
    await widget.log.getByText(text).waitFor();
  };
  /** The form, empty of anyone's conversation, and nothing stored. */
  const freshForm = async (what, secrets) => {
    await widget.firstName.waitFor();
    await waitForFocus(page, 'firstName');
    check(!(await widget.log.isVisible()), `${what}: a conversation shows instead of the form`);
    const shown = await widget.root.evaluate((host) => host.shadowRoot?.textContent ?? host.textContent ?? '');
    for (const secret of secrets) check(!shown.includes(secret), `${what}: the widget shows "${secret}"`);
    check((await storedSession(page)) === null, `${what}: the earlier session is still stored`);
  };
  try {
    const ada = `ada.shared.${stamp}@example.com`;
    const grace = `grace.shared.${stamp}@example.com`;
    const adaToken = identityToken(ada);
    const adaText = `Ada's private question ${stamp}`;
    await chat('Ada', ada, adaToken, adaText);
    // What is stored names no one: neither the token nor the e-mail.
    const storage = await page.evaluate(() => JSON.stringify(localStorage));
    check(!storage.includes(adaToken) && !storage.includes(ada), `the stored session holds the token or e-mail: ${storage}`);
    log('person A (signed in) registered and wrote');

    await load(identityToken(grace));
    await freshForm('another person signed in', [adaText]);
    log('the next person\'s page (another identity token) shows a fresh form, not A\'s chat');

    const graceText = `Grace's own question ${stamp}`;
    await chat('Grace', grace, identityToken(grace), graceText);
    // A new page view brings a new token (a later expiry) for the same person: the chat goes on.
    await sleep(1100);
    await load(identityToken(grace));
    await widget.log.getByText(graceText).waitFor();
    log('the same person with a renewed token resumes their own chat');

    await load(null);
    await freshForm('signed out after a verified chat', [graceText]);
    log('a signed-out page after a verified chat shows a fresh form');

    const anonymousText = `An anonymous question ${stamp}`;
    await chat('Anon', `anon.shared.${stamp}@example.com`, null, anonymousText);
    await load(adaToken);
    await freshForm('signed in after an anonymous chat', [anonymousText]);
    log('a signed-in page after an anonymous chat shows a fresh form');

    // "End chat": forgotten and disconnected; the next load shows the form.
    const again = `Ada again ${stamp}`;
    await chat('Ada', ada, adaToken, again);
    await widget.end.click();
    await freshForm('after End chat', [again]);
    await load(adaToken);
    await freshForm('the load after End chat', [again]);
    log('"End chat" forgets the session: the next load shows the form');
    check(problems.length === 0, problems.join('\n'));
  } catch (error) {
    await screenshot(page, 'shared-computer');
    throw error;
  }
}

/** An agent console page signed in as `email` through the sandbox identity provider's sign-in page. */
async function consoleAs(context, email, name) {
  const page = await context.newPage();
  const problems = watchProblems(page);
  await page.goto(`${base}/agent/`, { waitUntil: 'load' });
  await page.getByRole('button', { name: 'Sign in with your identity provider' }).click();
  // The provider's page: its labelled fields, keyboard only.
  await page.getByLabel('E-mail').waitFor();
  check(!page.url().startsWith(`${base}/`), `the sign-in page is the provider's, not ${page.url()}`);
  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('Password').fill('wrong-password');
  await page.getByLabel('Password').press('Enter');
  await page.getByRole('alert').getByText('Wrong e-mail or password').waitFor();
  await page.getByLabel('Password').fill(AGENT_PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText(`Signed in as ${name}`).waitFor();
  check(!page.url().includes('code='), `the code stayed in the address bar: ${page.url()}`);
  log(`${name} signed in to the agent console`);
  return {
    page,
    problems,
    list: page.getByRole('list', { name: 'Conversations' }),
    entry: (visitor) => page.getByRole('list', { name: 'Conversations' }).getByRole('button', { name: visitor }),
    log: page.getByRole('log', { name: 'Conversation' }),
    reply: page.getByLabel('Reply'),
  };
}

/** A visitor who registers in the widget on `path` and writes `question`. */
async function visitor(context, path, first, last, email, question) {
  const page = await context.newPage();
  const problems = watchProblems(page);
  const widget = widgetOf(page);
  await page.goto(`${base}${path}`, { waitUntil: 'load' });
  await widget.launcher.click();
  await widget.firstName.fill(first);
  await widget.lastName.fill(last);
  await widget.email.fill(email);
  await widget.start.click();
  await widget.log.waitFor();
  await widget.message.fill(question);
  await widget.send.click();
  await widget.log.getByText(question).waitFor();
  return { page, problems, widget };
}

/** Scenario 4: two visitors, two agents in the console, the CRM view of the demo page. */
async function agents(browser, stamp) {
  const contexts = [];
  const open = async (width) => {
    const context = await browser.newContext({ viewport: { width, height: 900 } });
    context.setDefaultTimeout(STEP_TIMEOUT_MS);
    contexts.push(context);
    return context;
  };
  let ada;
  try {
    ada = await consoleAs(await open(1360), 'ada@agents.example', 'Ada Agent');
    const bob = await consoleAs(await open(1360), 'bob@agents.example', 'Bob Agent');

    // Two visitors: one on the demo page (whose CRM view shows the transcript), one on a site's page.
    const question = `A question from the demo page ${stamp}`;
    const grace = await visitor(await open(1360), '/', 'Grace', 'Hopper', `grace.${stamp}@example.com`, question);
    const other = `Another visitor's question ${stamp}`;
    const alan = await visitor(await open(1000), '/embed-example.html', 'Alan', 'Turing', `alan.${stamp}@example.com`, other);

    // Both arrive in Ada's inbox live, newest first, unread, and the tab title counts them. (Entries are matched
    // with this run's stamp: a dev server keeps earlier runs' conversations.)
    const graceEntry = new RegExp(`Grace Hopper.*${stamp}`);
    const alanEntry = new RegExp(`Alan Turing.*${stamp}`);
    await ada.entry(graceEntry).waitFor();
    await ada.entry(alanEntry).waitFor();
    await ada.entry(new RegExp(`Alan Turing.*1 unread.*${stamp}`)).waitFor();
    const names = await ada.list.getByRole('listitem').allInnerTexts();
    check(names[0].includes('Alan Turing'), `newest activity is not first: ${JSON.stringify(names)}`);
    await ada.page.waitForFunction(() => /^\(\d+\) /.test(document.title));
    log(`Ada sees both conversations arrive live (tab title "${await ada.page.title()}")`);

    // Ada takes Grace's conversation, keyboard only, and answers with Enter.
    await ada.entry(graceEntry).focus();
    await ada.page.keyboard.press('Enter');
    await ada.log.getByText(question).waitFor();
    await ada.page.getByRole('button', { name: 'Assign to me' }).click();
    await ada.page.getByText('Assigned to you', { exact: true }).waitFor();
    await bob.entry(new RegExp(`Grace Hopper.*${stamp}.*Assigned to Ada Agent`)).waitFor();
    log('Bob sees the conversation assigned to Ada');
    const aside = ada.page.getByRole('complementary', { name: 'Contact' });
    await aside.getByText('Grace Hopper').waitFor();
    await aside.getByText('Identity not verified (e-mail as typed)').waitFor();
    await aside.getByText(`grace.${stamp}@example.com`).waitFor();
    // Typing indicators, both ways: the visitor's in the console, the agent's in the widget.
    await grace.widget.message.pressSequentially('One more thing');
    await ada.page.getByText('Grace Hopper is typing…').waitFor();
    await grace.widget.message.fill('');
    log('Ada sees the visitor typing');
    const answer = `Ada here, happy to help (${stamp})`;
    await ada.reply.pressSequentially('Ada here');
    await grace.page.getByRole('status').getByText('Ada Agent is typing…').waitFor();
    log('the visitor sees Ada typing');
    await ada.reply.fill(answer);
    await ada.reply.press('Enter');
    await ada.log.getByRole('listitem').filter({ hasText: 'Ada Agent (you)' }).getByText(answer).waitFor();
    await grace.widget.log.getByText(answer).waitFor();
    log('the visitor sees Ada\'s reply live');
    check(!(await alan.widget.log.getByText(answer).count()), 'the other visitor saw the reply');

    // The CRM view on the demo page: the visitor's line and Ada's, with her name.
    await grace.page.waitForFunction(
      (expected) => expected.every((text) => (document.getElementById('transcript')?.textContent ?? '').includes(text)),
      [`(visitor): ${question}`, `Ada Agent (agent): ${answer}`],
      { timeout: STEP_TIMEOUT_MS },
    );
    await grace.page.waitForFunction(
      (expected) => [...document.querySelectorAll('#notes iframe')]
        .some((frame) => expected.every((text) => (frame.getAttribute('srcdoc') ?? '').includes(text))),
      [question, answer, 'Ada Agent'],
      { timeout: NOTE_TIMEOUT_MS },
    );
    log('the transcript and the note in the sandbox HubSpot carry Ada\'s line with her name');

    // Closing moves it to "Closed", for Bob too.
    await ada.page.getByRole('button', { name: 'Close conversation' }).click();
    await ada.page.getByRole('button', { name: 'Reopen' }).waitFor();
    await ada.entry(graceEntry).waitFor({ state: 'detached' });
    await bob.entry(graceEntry).waitFor({ state: 'detached' });
    await ada.page.getByRole('button', { name: 'Closed', exact: true }).click();
    await ada.entry(graceEntry).waitFor();
    log('closed: the conversation moved to "Closed"');

    for (const page of [ada, bob, grace, alan]) check(page.problems.length === 0, page.problems.join('\n'));
    await screenshot(ada.page, 'agent-console');
    await screenshot(grace.page, '');

    // Signing out: back to the sign-in, with the provider's session ended.
    await ada.page.getByRole('button', { name: 'Sign out' }).click();
    await ada.page.getByRole('button', { name: 'Sign in with your identity provider' }).waitFor();
    log('Ada signed out');
  } catch (error) {
    if (ada) await screenshot(ada.page, 'agent-console-failed');
    throw error;
  } finally {
    for (const context of contexts) await context.close().catch(() => {});
  }
}

let browser;
let exitCode = 1;
try {
  browser = await chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
  // Fresh contexts: no cookies or storage from any earlier run.
  const stamp = Date.now();
  const embed = await browser.newContext({ viewport: { width: 1000, height: 800 } });
  embed.setDefaultTimeout(STEP_TIMEOUT_MS);
  const page = await embedExample(embed, stamp);
  try {
    await expiry(page);
  } catch (error) {
    await screenshot(page, 'expiry');
    throw error;
  }
  // A context of its own: a fake clock is installed for the whole context.
  const clocked = await browser.newContext({ viewport: { width: 1000, height: 800 } });
  clocked.setDefaultTimeout(STEP_TIMEOUT_MS);
  await expiresWhileOpen(clocked, stamp);
  const shared = await browser.newContext({ viewport: { width: 1000, height: 800 } });
  shared.setDefaultTimeout(STEP_TIMEOUT_MS);
  await sharedComputer(shared, stamp);
  await agents(browser, stamp);
  exitCode = 0;
  log('OK');
} catch (error) {
  console.error(`[browser] FAILED: ${error.stack ?? error.message}`);
} finally {
  await browser?.close().catch(() => {});
}
process.exit(exitCode);
