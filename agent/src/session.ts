// The agent's Stream session: `POST sessionUrl` with the ID token answers a Stream token for the agent's own user
// (at most an hour, never past the ID token). The SDK asks for a new one when it expires: the console gets a fresh
// ID token from the provider (the refresh token) and a new session with it. An agent the provider no longer knows
// gets no fresh ID token, so their Stream access ends with the last token.

import { StreamChat } from 'stream-chat';
import type { Auth } from './auth';
import type { ConsoleConfig } from './config';

export interface AgentSession {
  readonly apiKey: string;
  readonly userId: string;
  readonly userName: string;
  readonly token: string;
  readonly expiresAt: Date;
  readonly channelType: string;
  readonly streamBaseUrl: string | null;
  readonly hubspotPortalId: string | null;
}

export async function openSession(config: ConsoleConfig, idToken: string): Promise<AgentSession> {
  const response = await fetch(config.sessionUrl, {
    method: 'POST',
    headers: { authorization: `Bearer ${idToken}` },
  });
  const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (!response.ok) {
    throw new Error(typeof body.error === 'string' ? body.error : `the session endpoint answered ${response.status}`);
  }
  const text = (field: string): string => {
    const value = body[field];
    if (typeof value !== 'string' || value === '') throw new Error(`the session answer lacks ${field}`);
    return value;
  };
  const optional = (field: string): string | null => {
    const value = body[field];
    return typeof value === 'string' && value !== '' ? value : null;
  };
  return {
    apiKey: text('apiKey'),
    userId: text('userId'),
    userName: text('userName'),
    token: text('token'),
    expiresAt: new Date(text('expiresAt')),
    channelType: text('channelType'),
    streamBaseUrl: optional('streamBaseUrl'),
    hubspotPortalId: optional('hubspotPortalId'),
  };
}

/**
 * Connects the SDK as the agent. The first token is the session's; each later one (the SDK asks when a token
 * expires) comes from a renewed session. `onEnded` runs when no renewal is possible (signed out at the provider,
 * removed from it, or offline for longer than the refresh token lives).
 */
export async function connect(
  config: ConsoleConfig,
  auth: Auth,
  session: AgentSession,
  onEnded: (why: string) => void,
): Promise<StreamChat> {
  const client = new StreamChat(session.apiKey, session.streamBaseUrl !== null ? { baseURL: session.streamBaseUrl } : {});
  let first: string | null = session.token;
  const tokenProvider = async (): Promise<string> => {
    if (first !== null) {
      const token = first;
      first = null;
      return token;
    }
    try {
      const renewed = await openSession(config, await auth.refresh());
      return renewed.token;
    } catch (error) {
      onEnded((error as Error).message);
      throw error;
    }
  };
  await client.connectUser({ id: session.userId }, tokenProvider);
  return client;
}
