// The visitor's connection to Stream through the official SDK: connect with the registration's token, watch the one
// channel, and report messages and connection changes. Nothing here touches the page.

import { StreamChat } from 'stream-chat';
import type { Channel, Event, LocalMessage } from 'stream-chat';
import type { Session } from './session';

/** How the SDK rejected `connectUser` or `watch`, sorted by what the widget does next. */
export type ChatFailure =
  /** The token expired (Stream code 40): the visitor registers again. */
  | 'expired'
  /** The token or the conversation is no longer valid (revoked, bad signature, user or channel deleted, not a member). */
  | 'revoked'
  /** Stream could not be reached: the session is still good, try again later. */
  | 'unreachable';

export class ChatError extends Error {
  constructor(readonly failure: ChatFailure) {
    super(failure);
  }
}

/** Stream's error codes for a token it will never accept (see the SDK's `APIErrorCodes`). */
const TOKEN_EXPIRED = 40;
const TOKEN_REFUSED = new Set([41, 42, 43]);
const DOES_NOT_EXIST = 16;
const NOT_ALLOWED = 17;

/**
 * The SDK rejects `connectUser` with an `Error` whose message is JSON (`{code, StatusCode, message, isWSFailure}`),
 * and REST calls with an `Error` carrying `code` and `status`.
 */
export function classify(error: unknown): ChatFailure {
  let code: unknown;
  let status: unknown;
  let message = '';
  let wsFailure = false;
  if (error instanceof Error) {
    const fields = error as Error & { code?: unknown; status?: unknown; isWSFailure?: unknown };
    code = fields.code;
    status = fields.status;
    message = error.message;
    wsFailure = fields.isWSFailure === true;
    if (code === undefined) {
      try {
        const parsed = JSON.parse(error.message) as Record<string, unknown>;
        code = parsed.code;
        status = parsed.StatusCode;
        message = typeof parsed.message === 'string' ? parsed.message : '';
        wsFailure = parsed.isWSFailure === true;
      } catch {
        // A plain network error (no JSON): Stream was not reached.
      }
    }
  }
  // Stream answers a revoked token (a deleted user's, or one issued before a revocation) with the expiry code too.
  if (code === TOKEN_EXPIRED) return /revoked/i.test(message) ? 'revoked' : 'expired';
  if (wsFailure) return 'unreachable';
  if (
    (typeof code === 'number' && (TOKEN_REFUSED.has(code) || code === DOES_NOT_EXIST || code === NOT_ALLOWED)) ||
    status === 401 ||
    status === 403 ||
    status === 404
  ) {
    return 'revoked';
  }
  return 'unreachable';
}

export interface ChatListener {
  /** The channel's messages changed (history loaded, a message arrived, was edited or deleted). */
  messages(messages: readonly LocalMessage[]): void;
  /** The websocket went down (`online: false`, after the SDK's grace period) or came back. */
  connection(online: boolean): void;
  /** The conversation was deleted in Stream (an erasure): there is nothing left to show or write to. */
  deleted(): void;
  /** Someone else in the conversation (an agent) started typing (their name) or stopped (`null`). */
  typing(name: string | null): void;
}

/** One connected visitor in one channel. */
export class Chat {
  private readonly subscriptions: { unsubscribe(): void }[] = [];

  private constructor(
    private readonly client: StreamChat,
    private readonly channel: Channel,
  ) {}

  /** `connectUser` + `watch`; throws `ChatError`. */
  static async open(session: Session, listener: ChatListener): Promise<Chat> {
    // A client of our own (not `getInstance`): the host page may use the SDK too, with another user.
    const client = new StreamChat(session.apiKey, {
      ...(session.streamBaseUrl !== null ? { baseURL: session.streamBaseUrl } : {}),
      // Reconnection brings the channel's state back (`recoverState`), so nothing is missed while offline.
      recoverStateOnReconnect: true,
    });
    try {
      await client.connectUser({ id: session.customerId }, session.customerToken);
    } catch (error) {
      await client.disconnectUser().catch(() => undefined);
      throw new ChatError(classify(error));
    }
    const channel = client.channel(session.channelType, session.channelId);
    const chat = new Chat(client, channel);
    const render = () => listener.messages(channel.state.messages);
    for (const type of ['message.new', 'message.updated', 'message.deleted', 'channel.truncated'] as const) {
      chat.subscriptions.push(channel.on(type, render));
    }
    chat.subscriptions.push(channel.on('channel.deleted', () => listener.deleted()));
    // Typing events of the others only (Stream echoes the visitor's own to its other tabs).
    const other = (event: Event) => event.user !== undefined && event.user.id !== session.customerId;
    chat.subscriptions.push(
      channel.on('typing.start', (event: Event) => {
        if (other(event)) listener.typing(event.user?.name || 'Support');
      }),
      channel.on('typing.stop', (event: Event) => {
        if (other(event)) listener.typing(null);
      }),
    );
    chat.subscriptions.push(
      client.on('connection.changed', (event: Event) => listener.connection(event.online === true)),
      client.on('connection.recovered', render),
    );
    try {
      await channel.watch();
    } catch (error) {
      await chat.close();
      throw new ChatError(classify(error));
    }
    render();
    return chat;
  }

  /** The visitor typed: the SDK sends `typing.start` at most every few seconds, when the channel type has typing events. */
  keystroke(): void {
    void this.channel.keystroke().catch(() => undefined);
  }

  /** Sends `text` as the visitor; the message shows at once, without waiting for the websocket's echo. */
  async send(text: string): Promise<readonly LocalMessage[]> {
    void this.channel.stopTyping().catch(() => undefined);
    const response = await this.channel.sendMessage({ text });
    this.channel.state.addMessageSorted(response.message, true);
    return this.channel.state.messages;
  }

  async close(): Promise<void> {
    for (const subscription of this.subscriptions.splice(0)) subscription.unsubscribe();
    await this.client.disconnectUser().catch(() => undefined);
  }
}
