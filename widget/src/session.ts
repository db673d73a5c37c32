// A visitor's chat session: what registration answered, parsed into one checked shape, and kept in localStorage so
// a reload (or another page of the same site) resumes the conversation until the token expires.

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

/**
 * One stored session per registration API, so two widgets for two sites on one origin do not mix. Storage can be
 * unavailable (private modes, sandboxed frames, a full quota): then the session lasts as long as the page.
 */
export class SessionStore {
  private readonly key: string;

  constructor(registrationUrl: string) {
    this.key = `chat-sync-widget:v1:${registrationUrl}`;
  }

  load(): Session | null {
    let raw: string | null;
    try {
      raw = window.localStorage.getItem(this.key);
    } catch {
      return null;
    }
    if (raw === null) return null;
    try {
      return parseSession(JSON.parse(raw));
    } catch {
      // Written by an older widget or edited by hand: forget it rather than fail on every page view.
      this.clear();
      return null;
    }
  }

  save(session: Session): void {
    try {
      window.localStorage.setItem(
        this.key,
        JSON.stringify({ ...session, expiresAt: session.expiresAt.toISOString() }),
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
