// The widget: a launcher and a panel in a shadow root, and the visitor's way through it:
// form → registration → connected conversation, back to the form when the session expires or is revoked, when the
// page is someone else's (another identity token, see session.ts), or when the visitor presses "End chat".

import type { LocalMessage } from 'stream-chat';
import { Chat, ChatError, ChatFailure } from './chat';
import { ConversationView } from './conversation_view';
import { element } from './dom';
import type { EmbedOptions } from './embed';
import { FormView } from './form_view';
import { Form, register } from './registration';
import { identityOf, isExpired, Session, SessionStore } from './session';
import { stylesheet } from './styles';

const LAUNCHER_LABEL = 'Chat with us';
const EXPIRED = 'Your chat session has expired. Start a new chat to continue.';
const REVOKED = 'This chat session has ended. Start a new chat to continue.';
const UNREACHABLE = 'The chat cannot be reached right now. Trying again…';
const RECONNECTING = 'Connection lost. Reconnecting…';
/** Waits between attempts to reach Stream for a session that is still valid. */
const RETRY_DELAYS_MS = [2_000, 5_000, 15_000, 30_000];
/** `setTimeout` takes at most 2^31-1 ms (~24.8 days); a longer session re-arms its timer. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Fired on `window` when a conversation is connected, for the host page (the dev page's agent side uses it). */
export const CONVERSATION_EVENT = 'chat-sync:conversation';
export interface ConversationDetail {
  readonly channelType: string;
  readonly channelId: string;
  readonly customerId: string;
}

type Notice = { kind: 'info' | 'error'; text: string } | null;

export class Widget {
  private readonly store: SessionStore;
  /** Who this page says the visitor is (session.ts): what the stored session must have been made for. */
  private readonly identity: Promise<string | null>;
  private readonly launcher: HTMLButtonElement;
  /** "End chat": shown while there is a session to end. */
  private readonly endButton: HTMLButtonElement;
  private readonly badge: HTMLElement;
  private readonly panel: HTMLElement;
  private readonly notice: HTMLElement;
  private readonly form: FormView;
  private readonly conversation: ConversationView;
  private chat: Chat | null = null;
  /** Bumped whenever the session changes, so a late answer for an older one is dropped. */
  private generation = 0;
  private expiryTimer: number | undefined;
  private retryTimer: number | undefined;
  /** Failed attempts in a row to reach Stream with the current session. */
  private retries = 0;
  private unread = 0;
  /** Ids of the messages already shown; null until the conversation's history has loaded (history is not news). */
  private seen: Set<string> | null = null;

  constructor(
    private readonly options: EmbedOptions,
    host: HTMLElement,
  ) {
    this.store = new SessionStore(options.registrationUrl);
    this.identity = identityOf(options.identityToken);
    const shadow = host.attachShadow({ mode: 'open' });
    shadow.adoptedStyleSheets = [stylesheet()];

    this.badge = element('span', { class: 'badge', hidden: true });
    this.launcher = element(
      'button',
      { type: 'button', id: 'launcher', class: 'launcher', 'aria-expanded': 'false', 'aria-controls': 'chat-panel' },
      LAUNCHER_LABEL,
      this.badge,
    );
    this.form = new FormView((form) => this.register(form));
    this.conversation = new ConversationView(
      (text) => this.send(text),
      () => this.chat?.keystroke(),
    );
    this.notice = element('p', { class: 'notice', role: 'status' });
    const close = element('button', { type: 'button', class: 'close', 'aria-label': 'Close chat' }, '×');
    this.endButton = element('button', { type: 'button', class: 'end', hidden: true }, 'End chat');
    this.panel = element(
      'section',
      { id: 'chat-panel', class: 'panel', role: 'dialog', 'aria-labelledby': 'chat-title', hidden: true },
      element('header', {}, element('h2', { id: 'chat-title' }, options.title), this.endButton, close),
      this.notice,
      element('div', { class: 'body' }, this.form.root, this.conversation.root),
    );
    const root = element('div', { class: 'root' }, this.launcher, this.panel);
    if (options.color !== null) root.style.setProperty('--accent', options.color);
    shadow.append(root);
    // Neither the form nor a conversation until `start` knows which (it reads storage after hashing the identity).
    this.form.root.hidden = true;
    this.conversation.root.hidden = true;

    this.launcher.addEventListener('click', () => (this.isOpen() ? this.close() : this.open()));
    close.addEventListener('click', () => this.close());
    // Forgotten here and disconnected: the next person at this computer, or the next page, starts from the form.
    this.endButton.addEventListener('click', () => this.end(null));
    this.panel.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        event.stopPropagation();
        this.close();
      }
    });
  }

  /**
   * Resumes the stored session if it was made for who this page says the visitor is (connecting at once, so replies
   * arrive while the panel is closed); otherwise it is forgotten and the form shows.
   */
  async start(): Promise<void> {
    const session = this.store.load(await this.identity);
    if (session === null) {
      this.showForm(null);
    } else if (isExpired(session)) {
      this.store.clear();
      this.showForm(EXPIRED);
    } else {
      void this.connect(session);
    }
  }

  private isOpen(): boolean {
    return !this.panel.hidden;
  }

  private open(): void {
    this.panel.hidden = false;
    this.launcher.setAttribute('aria-expanded', 'true');
    this.setUnread(0);
    this.focusContent();
  }

  private close(): void {
    this.panel.hidden = true;
    this.launcher.setAttribute('aria-expanded', 'false');
    this.launcher.focus();
  }

  private focusContent(): void {
    if (!this.isOpen()) return;
    if (!this.form.root.hidden) this.form.focus();
    else if (!this.conversation.root.hidden) this.conversation.focus();
  }

  private setNotice(notice: Notice): void {
    this.notice.textContent = notice?.text ?? '';
    this.notice.dataset.kind = notice?.kind ?? '';
  }

  private showForm(alert: string | null): void {
    this.endButton.hidden = true;
    // The conversation left behind is emptied, not just hidden: its text stays out of the page.
    this.conversation.reset('');
    this.form.clearErrors();
    if (alert !== null) this.form.showAlert(alert);
    this.form.root.hidden = false;
    this.conversation.root.hidden = true;
    this.setNotice(null);
    this.focusContent();
  }

  private async register(form: Form): Promise<void> {
    const session = await register(this.options.registrationUrl, form, this.options.identityToken);
    this.store.save(session, await this.identity);
    this.retries = 0;
    // From here on the connection says itself what happens (conversation, or a notice and a retry).
    await this.connect(session);
  }

  /** Connects `session`, or shows why not (and retries while the session is still good). */
  private async connect(session: Session): Promise<void> {
    const generation = ++this.generation;
    await this.disconnect();
    this.form.root.hidden = true;
    this.conversation.root.hidden = true;
    this.endButton.hidden = false;
    this.setNotice({ kind: 'info', text: 'Connecting…' });
    this.conversation.reset(session.customerId);
    this.seen = null;
    try {
      const chat = await Chat.open(session, {
        messages: (messages) => {
          if (generation !== this.generation) return;
          this.countUnread(messages, session.customerId);
          this.conversation.render(messages);
        },
        connection: (online) => {
          if (generation !== this.generation) return;
          this.setNotice(online ? null : { kind: 'info', text: RECONNECTING });
        },
        deleted: () => {
          if (generation === this.generation) this.end(REVOKED);
        },
        typing: (name) => {
          if (generation === this.generation) this.conversation.setTyping(name);
        },
      });
      if (generation !== this.generation) {
        await chat.close();
        return;
      }
      this.chat = chat;
    } catch (error) {
      if (generation !== this.generation) return;
      this.failed(session, error instanceof ChatError ? error.failure : 'unreachable', generation);
      return;
    }
    this.retries = 0;
    this.setNotice(null);
    this.form.root.hidden = true;
    this.conversation.root.hidden = false;
    this.focusContent();
    this.armExpiry(session, generation);
    const detail: ConversationDetail = {
      channelType: session.channelType,
      channelId: session.channelId,
      customerId: session.customerId,
    };
    window.dispatchEvent(new CustomEvent(CONVERSATION_EVENT, { detail }));
  }

  private failed(session: Session, failure: ChatFailure, generation: number): void {
    switch (failure) {
      case 'expired':
      case 'revoked':
        this.store.clear();
        this.showForm(failure === 'expired' ? EXPIRED : REVOKED);
        return;
      case 'unreachable': {
        // The session is still good: keep it and try again, while the visitor can still read the notice.
        this.setNotice({ kind: 'error', text: UNREACHABLE });
        const delay = RETRY_DELAYS_MS[Math.min(this.retries, RETRY_DELAYS_MS.length - 1)];
        this.retries += 1;
        window.clearTimeout(this.retryTimer);
        this.retryTimer = window.setTimeout(() => {
          if (generation === this.generation) void this.connect(session);
        }, delay);
        return;
      }
    }
  }

  /** At `expiresAt` Stream would refuse the token on the next reconnect: end the session then, and say so. */
  private armExpiry(session: Session, generation: number): void {
    window.clearTimeout(this.expiryTimer);
    const remaining = session.expiresAt.getTime() - Date.now();
    this.expiryTimer = window.setTimeout(
      () => {
        if (generation !== this.generation) return;
        if (!isExpired(session)) {
          this.armExpiry(session, generation);
          return;
        }
        this.end(EXPIRED);
      },
      Math.min(Math.max(remaining, 0), MAX_TIMER_MS),
    );
  }

  /** Ends the session for good: disconnected, forgotten, and the form says why (if there is more to say). */
  private end(reason: string | null): void {
    this.generation += 1;
    void this.disconnect();
    this.store.clear();
    this.showForm(reason);
  }

  private async disconnect(): Promise<void> {
    window.clearTimeout(this.expiryTimer);
    window.clearTimeout(this.retryTimer);
    const chat = this.chat;
    this.chat = null;
    await chat?.close();
  }

  private async send(text: string): Promise<void> {
    const chat = this.chat;
    if (chat === null) throw new Error('not connected');
    try {
      this.conversation.render(await chat.send(text));
      this.setNotice(null);
    } catch (error) {
      this.setNotice({ kind: 'error', text: 'Your message was not sent. Please try again.' });
      throw error;
    }
  }

  /** Messages from the agent that arrive while the panel is closed show as a count on the launcher. */
  private countUnread(messages: readonly LocalMessage[], ownId: string): void {
    if (this.seen === null) {
      this.seen = new Set(messages.map((message) => message.id));
      return;
    }
    let fresh = 0;
    for (const message of messages) {
      if (this.seen.has(message.id)) continue;
      this.seen.add(message.id);
      if (message.user?.id !== ownId) fresh += 1;
    }
    if (fresh > 0 && !this.isOpen()) this.setUnread(this.unread + fresh);
  }

  private setUnread(count: number): void {
    this.unread = count;
    this.badge.hidden = count === 0;
    this.badge.textContent = count === 0 ? '' : String(count);
    this.launcher.setAttribute(
      'aria-label',
      count === 0 ? LAUNCHER_LABEL : `${LAUNCHER_LABEL} (${count} new ${count === 1 ? 'message' : 'messages'})`,
    );
  }
}
