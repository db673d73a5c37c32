// The agent console: sign in at the team's identity provider, open a Stream session as oneself, answer visitors.
// Built by `make agent` into agent/dist/ (index.html, agent-console.js): static files a team hosts anywhere, with
// a config.json beside them (see config.ts and docs/agent-console.md).

import { Auth } from './auth';
import { loadConfig } from './config';
import { element } from '../../widget/src/dom';
import { Inbox } from './inbox';
import { connect, openSession } from './session';
import { adoptStyles } from './styles';

function byId(id: string): HTMLElement {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`the page lacks #${id}`);
  return found;
}

function showSignIn(auth: Auth, problem: string | null): void {
  const button = element('button', { type: 'button' }, 'Sign in with your identity provider');
  button.addEventListener('click', () => void auth.signIn().catch((e: Error) => showSignIn(auth, e.message)));
  const children: (Node | string)[] = [
    element('h2', {}, 'Sign in'),
    element('p', {}, 'Agents sign in with the company account; the console then answers visitors as you.'),
  ];
  if (problem !== null) children.push(element('p', { role: 'alert' }, problem));
  children.push(button);
  byId('app').replaceChildren(element('section', { class: 'signin', 'aria-labelledby': 'signin-title' }, ...children));
  byId('app').querySelector('h2')?.setAttribute('id', 'signin-title');
  byId('who').textContent = '';
  byId('sign-out').hidden = true;
  button.focus();
}

async function main(): Promise<void> {
  adoptStyles();
  const config = await loadConfig();
  const redirectUri = `${window.location.origin}${window.location.pathname}`;
  const auth = new Auth(config, redirectUri);
  let tokens;
  try {
    tokens = await auth.completeSignIn();
  } catch (error) {
    showSignIn(auth, (error as Error).message);
    return;
  }
  if (tokens === null) {
    showSignIn(auth, null);
    return;
  }
  const session = await openSession(config, tokens.idToken);
  let inbox: Inbox | null = null;
  const client = await connect(config, auth, session, (why) => {
    inbox?.stop();
    void client.disconnectUser();
    showSignIn(auth, `Your session ended (${why}). Sign in again.`);
  });
  byId('who').textContent = `Signed in as ${session.userName}`;
  const signOut = byId('sign-out');
  signOut.hidden = false;
  signOut.addEventListener('click', () => {
    inbox?.stop();
    void client.disconnectUser().finally(() => {
      void auth.signOut().finally(() => showSignIn(auth, 'Signed out.'));
    });
  });
  inbox = new Inbox(client, session);
  inbox.mount(byId('app'));
  await inbox.start();
}

main().catch((error: Error) => {
  const app = document.getElementById('app');
  app?.replaceChildren(element('p', { role: 'alert' }, `The console could not start: ${error.message}`));
});
