// The console's configuration: config.json next to index.html, written by whoever hosts the console (the dev server
// serves one for the sandbox). Nothing in it is secret: the issuer, the console's public client id, and where
// agent sessions are opened.

export interface ConsoleConfig {
  /** The OpenID Connect issuer, exactly as its tokens' `iss` (discovery is read from it). */
  readonly issuer: string;
  /** The console's client id at that provider: a public client (authorization code + PKCE). */
  readonly clientId: string;
  /** `POST` here with the ID token for a Stream session (the stack's AgentSessionsUrl). */
  readonly sessionUrl: string;
  /** Optional: where signing out ends the provider's own session (Cognito's /logout is not in its discovery). */
  readonly logoutUrl: string | null;
}

export async function loadConfig(): Promise<ConsoleConfig> {
  const response = await fetch('config.json', { cache: 'no-store' });
  if (!response.ok) throw new Error(`config.json could not be read (${response.status})`);
  const raw = (await response.json()) as Record<string, unknown>;
  const text = (field: string): string => {
    const value = raw[field];
    if (typeof value !== 'string' || value === '') throw new Error(`config.json lacks ${field}`);
    return value;
  };
  return {
    issuer: text('issuer'),
    clientId: text('clientId'),
    sessionUrl: text('sessionUrl'),
    logoutUrl: typeof raw.logoutUrl === 'string' && raw.logoutUrl !== '' ? raw.logoutUrl : null,
  };
}
