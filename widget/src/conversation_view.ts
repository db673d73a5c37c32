// The conversation: a `role="log"` list (screen readers announce what is appended) and the message box.
// Messages are kept by id, so a new one is appended and an edit changes one item in place: the log never re-reads
// the whole history aloud.

import type { LocalMessage } from 'stream-chat';
import { element } from './dom';

/** Stream's default limit for a message's text. */
const MAX_TEXT_CHARS = 5000;

export class ConversationView {
  readonly root: HTMLElement;
  private readonly log: HTMLOListElement;
  private readonly input: HTMLTextAreaElement;
  /** "Ada Agent is typing…" while an agent types (a polite live region: announced once, not per keystroke). */
  private readonly typing: HTMLParagraphElement;
  private readonly items = new Map<string, HTMLLIElement>();
  /** What each item shows now, so an unchanged message is not rewritten (and not announced again). */
  private readonly shown = new WeakMap<HTMLLIElement, string>();
  private ownId = '';

  /**
   * `onSend` resolves when the message was accepted, and throws (with a sentence to show) when not; `onTyping` is
   * called as the visitor types.
   */
  constructor(onSend: (text: string) => Promise<void>, onTyping: () => void) {
    this.log = element('ol', { class: 'messages', role: 'log', 'aria-label': 'Conversation', tabindex: '0' });
    this.input = element('textarea', {
      id: 'message',
      name: 'message',
      rows: '2',
      maxlength: String(MAX_TEXT_CHARS),
      autocomplete: 'off',
    });
    const send = element('button', { type: 'submit', class: 'send' }, 'Send');
    const composer = element(
      'form',
      { class: 'composer' },
      element('label', { for: 'message' }, 'Message'),
      element('div', { class: 'row' }, this.input, send),
    );
    this.input.addEventListener('input', () => {
      if (this.input.value.trim() !== '') onTyping();
    });
    this.typing = element('p', { class: 'typing', role: 'status' });
    // Enter sends, Shift+Enter starts a new line (and IME composition is left alone).
    this.input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        composer.requestSubmit();
      }
    });
    composer.addEventListener('submit', (event) => {
      event.preventDefault();
      const text = this.input.value.trim();
      if (text === '' || send.disabled) return;
      send.disabled = true;
      onSend(text)
        .then(() => {
          this.input.value = '';
        })
        .catch(() => {
          // The text stays in the box to send again; the widget says what went wrong.
        })
        .finally(() => {
          send.disabled = false;
          this.input.focus();
        });
    });
    this.root = element('div', { class: 'conversation' }, this.log, this.typing, composer);
  }

  /** Shows that `name` is typing, or nothing (`null`). */
  setTyping(name: string | null): void {
    const text = name === null ? '' : `${name} is typing…`;
    if (this.typing.textContent !== text) this.typing.textContent = text;
  }

  /** Starts a new conversation for `userId` (its messages read "You"). */
  reset(userId: string): void {
    this.ownId = userId;
    this.setTyping(null);
    this.items.clear();
    this.log.replaceChildren();
  }

  render(messages: readonly LocalMessage[]): void {
    const seen = new Set<string>();
    let previous: Element | null = null;
    for (const message of messages) {
      if (message.type === 'error' || message.type === 'ephemeral' || message.type === 'system') continue;
      seen.add(message.id);
      let item = this.items.get(message.id);
      if (item === undefined) {
        item = element('li', { class: 'message' });
        this.items.set(message.id, item);
      }
      this.fill(item, message);
      const expected: Element | null = previous === null ? this.log.firstElementChild : previous.nextElementSibling;
      if (expected !== item) {
        // Only a new or moved message changes the list's order.
        this.log.insertBefore(item, expected);
      }
      previous = item;
    }
    for (const [id, item] of this.items) {
      if (!seen.has(id)) {
        item.remove();
        this.items.delete(id);
      }
    }
    this.log.scrollTop = this.log.scrollHeight;
  }

  private fill(item: HTMLLIElement, message: LocalMessage): void {
    const own = message.user?.id === this.ownId;
    const deleted = message.type === 'deleted' || message.deleted_at != null;
    const name = own ? 'You' : message.user?.name || 'Support';
    const time = message.created_at ? message.created_at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : '';
    const text = deleted ? 'This message was deleted.' : (message.text ?? '');
    const key = `${name}\u0000${time}\u0000${text}\u0000${own}\u0000${deleted}`;
    if (this.shown.get(item) === key) return;
    this.shown.set(item, key);
    item.className = `message${own ? ' own' : ''}${deleted ? ' deleted' : ''}`;
    item.replaceChildren(element('span', { class: 'who' }, time ? `${name} · ${time}` : name), text);
  }

  focus(): void {
    this.input.focus();
  }
}
