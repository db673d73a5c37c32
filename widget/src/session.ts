// A visitor's chat session: what registration answered, parsed into one checked shape, and kept in localStorage so
// a reload (or another page of the same site) resumes the conversation until the token expires.
//
// Invariants:
// - A stored session is bound to who the page said the visitor was when it was made: `anonymous` (no
//   data-identity-token), or a SHA-256 of the identity token's e-mail claim. It is resumed only by a page that says
//   the same; any other page (another person's token, a token after an anonymous chat, none after a signed-in chat)
//   forgets it and starts from the form. On a shared computer the next person never sees the previous one's chat.
// - What is stored names no one: the registration answer (ids, the Stream token) and the binding, a hash; never the
//   identity token, the e-mail or the name.
// - A session that cannot be bound (no Web Crypto, as on a plain-http page) is not stored: it lasts as long as the page.

export interface Session {
  readonly apiKey: string;
  readonly customerId: string;
  readonly customerToken: string;
  readonly channelType: string;
  readonly channelId: string;
  readonly expiresAt: Date;
  /** Set by registration when it talks to another Stream than the SDK's default (the sandbox in `make dev`). */
  readonly streamBaseUrl: string | null;
}

/** The registration answer (or a stored copy) was not what the API promises. */
export class SessionShapeError extends Error {}

/** Parses the registration answer, or a stored session, which is the same JSON. */
export function parseSession(value: unknown): Session {
  if (typeof value !== 'object' || value === null) {
    throw new SessionShapeError('the registration answer is not a JSON object');
  }
  const record = value as Record<string, unknown>;
  const text = (field: string): string => {
    const found = record[field];
    if (typeof found !== 'string' || found === '') {
      throw new SessionShapeError(`the registration answer lacks ${field}`);
    }
    return found;
  };
  const expiresAt = new Date(text('expiresAt'));
  if (Number.isNaN(expiresAt.getTime())) {
    throw new SessionShapeError('the registration answer has an invalid expiresAt');
  }
  let streamBaseUrl: string | null = null;
  if (record.streamBaseUrl !== undefined && record.streamBaseUrl !== null) {
    let url: URL;
    try {
      url = new URL(text('streamBaseUrl'));
    } catch {
      throw new SessionShapeError('the registration answer has an invalid streamBaseUrl');
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new SessionShapeError('streamBaseUrl must be http(s)');
    }
    streamBaseUrl = url.href.replace(/\/$/, '');
  }
  return {
    apiKey: text('apiKey'),
    customerId: text('customerId'),
    customerToken: text('customerToken'),
    channelType: text('channelType'),
    channelId: text('channelId'),
    expiresAt,
    streamBaseUrl,
  };
}

export function isExpired(session: Session, now: Date = new Date()): boolean {
  return session.expiresAt.getTime() <= now.getTime();
}

/** The binding of a page without an identity token. */
export const ANONYMOUS = 'anonymous';

/**
 * Who the page says its visitor is, as a stored session is bound to it: `anonymous` without a token, else
 * `sha256:<hex>` of the token's e-mail claim (lowercased) — the same person on every page, whatever the token's
 * expiry — or, for a token whose claims cannot be read, of the token itself. Null when Web Crypto is unavailable.
 */
export async function identityOf(identityToken: string | null): Promise<string | null> {
  if (identityToken === null) return ANONYMOUS;
  const subtle = globalThis.crypto?.subtle;
  if (subtle === undefined) return null;
  const email = emailClaim(identityToken);
  const subject = email === null ? `token:${identityToken}` : `email:${email}`;
  try {
    const digest = await subtle.digest('SHA-256', new TextEncoder().encode(subject));
    return `sha256:${Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, '0')).join('')}`;
  } catch {
    return null;
  }
}

/**
 * The `email` claim of a JWT, read without checking its signature: the widget cannot check it (registration does),
 * and a page that forges one only misleads its own visitor's browser.
 */
function emailClaim(token: string): string | null {
  const claims = token.split('.')[1];
  if (claims === undefined || claims === '') return null;
  try {
    const binary = atob(claims.replace(/-/g, '+').replace(/_/g, '/'));
    const parsed: unknown = JSON.parse(new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0))));
    const email = (parsed as Record<string, unknown> | null)?.email;
    return typeof email === 'string' && email.trim() !== '' ? email.trim().toLowerCase() : null;
  } catch {
    return null;
  }
}

/**
 * One stored session per registration API, so two widgets for two sites on one origin do not mix. Storage can be
 * unavailable (private modes, sandboxed frames, a full quota): then the session lasts as long as the page.
 */
export class SessionStore {
  private readonly key: string;

  constructor(registrationUrl: string) {
    this.key = `chat-sync-widget:v1:${registrationUrl}`;
  }

  /** The stored session if it was made for `identity`; any other is forgotten (see the invariants above). */
  load(identity: string | null): Session | null {
    let raw: string | null;
    try {
      raw = window.localStorage.getItem(this.key);
    } catch {
      return null;
    }
    if (raw === null) return null;
    try {
      const stored: unknown = JSON.parse(raw);
      // Stored before sessions were bound (no `identity`) counts as someone else's: whose it was is unknown.
      const bound = (stored as Record<string, unknown> | null)?.identity;
      if (identity === null || bound !== identity) {
        this.clear();
        return null;
      }
      return parseSession(stored);
    } catch {
      // Written by an older widget or edited by hand: forget it rather than fail on every page view.
      this.clear();
      return null;
    }
  }

  /** Stores `session` bound to `identity`; with no binding (null) nothing is stored. */
  save(session: Session, identity: string | null): void {
    if (identity === null) {
      this.clear();
      return;
    }
    try {
      window.localStorage.setItem(
        this.key,
        JSON.stringify({ ...session, expiresAt: session.expiresAt.toISOString(), identity }),
      );
    } catch {
      // See the class comment: the session still works for this page.
    }
  }

  clear(): void {
    try {
      window.localStorage.removeItem(this.key);
    } catch {
      // Nothing stored, nothing to clear.
    }
  }
}
