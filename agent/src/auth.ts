// Signing in with OpenID Connect: the authorization code flow with PKCE (S256) for a public client, as Cognito,
// Google, Entra ID and Okta offer it to single-page apps.
//
// Invariants:
// - No token is ever in a URL: the provider returns a one-time code (removed from the address bar at once), which
//   is exchanged with the PKCE verifier only this tab holds.
// - Tokens live in memory only: a reload signs in again (at a provider that keeps its own session, without asking).
//   What survives the redirect in sessionStorage is the verifier, state and nonce, removed once used.
// - The ID token is accepted only with the nonce this tab sent; its signature is the session endpoint's to verify
//   (the browser holds no key to check it with), and it is never shown or logged.

import type { ConsoleConfig } from './config';

const PENDING = 'chat-sync-agent:pending-sign-in';

interface Discovery {
  authorization_endpoint: string;
  token_endpoint: string;
  end_session_endpoint?: string;
  revocation_endpoint?: string;
}

export interface Tokens {
  idToken: string;
  refreshToken: string | null;
}

interface Pending {
  state: string;
  verifier: string;
  nonce: string;
}

function base64url(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function randomText(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

async function s256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return base64url(new Uint8Array(digest));
}

/** The claims of a JWT, unverified (only to compare the nonce and read the expiry and name). */
export function claimsOf(jwt: string): Record<string, unknown> {
  const part = jwt.split('.')[1] ?? '';
  const json = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
  const bytes = Uint8Array.from(json, (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
}

export class Auth {
  private discovery: Promise<Discovery> | null = null;
  private tokens: Tokens | null = null;

  constructor(
    private readonly config: ConsoleConfig,
    private readonly redirectUri: string,
  ) {}

  private provider(): Promise<Discovery> {
    this.discovery ??= (async () => {
      const url = `${this.config.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
      const response = await fetch(url);
      if (!response.ok) throw new Error(`the identity provider's discovery document answered ${response.status}`);
      return (await response.json()) as Discovery;
    })();
    return this.discovery;
  }

  /** Leaves for the provider's sign-in page. */
  async signIn(): Promise<void> {
    const provider = await this.provider();
    const pending: Pending = { state: randomText(), verifier: randomText(), nonce: randomText() };
    sessionStorage.setItem(PENDING, JSON.stringify(pending));
    const url = new URL(provider.authorization_endpoint);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: this.config.clientId,
      redirect_uri: this.redirectUri,
      scope: 'openid email profile',
      state: pending.state,
      nonce: pending.nonce,
      code_challenge: await s256(pending.verifier),
      code_challenge_method: 'S256',
    }).toString();
    window.location.assign(url.href);
  }

  /**
   * After the provider's redirect: exchanges the code for tokens (once, with this tab's verifier) and clears the
   * address bar. `null` when the page was not opened by a redirect.
   */
  async completeSignIn(): Promise<Tokens | null> {
    const params = new URLSearchParams(window.location.search);
    const code = params.get('code');
    const error = params.get('error');
    if (code === null && error === null) return null;
    window.history.replaceState(null, '', this.redirectUri);
    const stored = sessionStorage.getItem(PENDING);
    sessionStorage.removeItem(PENDING);
    if (error !== null) throw new Error(`the identity provider refused the sign-in: ${error}`);
    const pending = stored === null ? null : (JSON.parse(stored) as Pending);
    if (pending === null || params.get('state') !== pending.state) {
      throw new Error('this sign-in was not started here (state mismatch): sign in again');
    }
    const tokens = await this.tokenRequest({
      grant_type: 'authorization_code',
      code: code ?? '',
      redirect_uri: this.redirectUri,
      client_id: this.config.clientId,
      code_verifier: pending.verifier,
    });
    if (claimsOf(tokens.idToken).nonce !== pending.nonce) {
      throw new Error('the ID token was not issued for this sign-in (nonce mismatch)');
    }
    this.tokens = tokens;
    return tokens;
  }

  /** A fresh ID token from the refresh token; fails once the provider no longer knows the agent. */
  async refresh(): Promise<string> {
    const refreshToken = this.tokens?.refreshToken;
    if (refreshToken === null || refreshToken === undefined) throw new Error('sign in again');
    const tokens = await this.tokenRequest({
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
      client_id: this.config.clientId,
    });
    this.tokens = { idToken: tokens.idToken, refreshToken: tokens.refreshToken ?? refreshToken };
    return tokens.idToken;
  }

  idToken(): string | null {
    return this.tokens?.idToken ?? null;
  }

  private async tokenRequest(form: Record<string, string>): Promise<Tokens> {
    const provider = await this.provider();
    const response = await fetch(provider.token_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
    });
    const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
    if (!response.ok || typeof body.id_token !== 'string') {
      throw new Error(`the identity provider refused the token request: ${String(body.error ?? response.status)}`);
    }
    return {
      idToken: body.id_token,
      refreshToken: typeof body.refresh_token === 'string' ? body.refresh_token : null,
    };
  }

  /** Forgets the tokens, revokes the refresh token, and ends the provider's session if it says how. */
  async signOut(): Promise<void> {
    const tokens = this.tokens;
    this.tokens = null;
    const provider = await this.provider().catch(() => null);
    if (tokens?.refreshToken && provider?.revocation_endpoint) {
      await fetch(provider.revocation_endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token: tokens.refreshToken, client_id: this.config.clientId }).toString(),
      }).catch(() => undefined);
    }
    const logout = this.config.logoutUrl ?? provider?.end_session_endpoint;
    if (logout) {
      const url = new URL(logout);
      url.searchParams.set('client_id', this.config.clientId);
      // OpenID's name, and Cognito's.
      url.searchParams.set('post_logout_redirect_uri', this.redirectUri);
      url.searchParams.set('logout_uri', this.redirectUri);
      window.location.assign(url.href);
    }
  }
}
