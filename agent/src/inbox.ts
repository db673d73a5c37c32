// The inbox: every conversation of the product's channel type (the agents' Stream role reads them all), newest
// activity first, and the selected one with its contact.
//
// What is whose: assignment and status are the channel's custom data (`assignee_id`, `assignee_name`, `status`),
// set by agents with Stream's partial update, so every agent's console sees them live (`channel.updated`). Unread
// counts are this agent's: the visitor's messages since this agent last had the conversation open (kept in this
// browser's localStorage by channel id, no content). Stream delivers new messages live on the channels the console
// watches; conversations created after it loaded are found by asking again every few seconds (an agent is not a
// member of a new conversation, so Stream sends it no notification).

import type { Channel, Event, LocalMessage, StreamChat } from 'stream-chat';
import { element } from '../../widget/src/dom';
import type { AgentSession } from './session';

/** How often new conversations are looked for. */
const DISCOVER_MS = 4000;
/** How many conversations the list holds (newest activity first). */
const PAGE = 30;
/** The agents' Stream role (setup --stream-access creates it). */
const AGENT_ROLE = 'chat_agent';

type Filter = 'open' | 'closed';

/** A field of the channel's custom data: top-level on Stream, under `custom` where the API nests it. */
function custom(channel: Channel, key: string): unknown {
  const data = (channel.data ?? {}) as Record<string, unknown>;
  const nested = data.custom as Record<string, unknown> | undefined;
  return data[key] ?? nested?.[key];
}

function customText(channel: Channel, key: string): string | null {
  const value = custom(channel, key);
  return typeof value === 'string' && value !== '' ? value : null;
}

function isClosed(channel: Channel): boolean {
  return custom(channel, 'status') === 'closed';
}

/** The visitor: the member who is neither the conversation's creator (the support agent) nor an agent. */
function visitorOf(channel: Channel): { id: string; name: string } | null {
  const creator = (channel.data?.created_by as { id?: string } | undefined)?.id;
  for (const member of Object.values(channel.state.members)) {
    const user = member.user;
    if (user === undefined || user.id === creator || user.role === AGENT_ROLE) continue;
    return { id: user.id, name: user.name ?? user.id };
  }
  return null;
}

function regular(messages: readonly LocalMessage[]): LocalMessage[] {
  return messages.filter((m) => m.type === 'regular' || m.type === 'deleted');
}

function lastOf<T>(items: readonly T[]): T | undefined {
  return items[items.length - 1];
}

/**
 * A partial update of the channel's custom data. The SDK's type lists only Stream's own fields; Stream takes any
 * custom field this way, as its document says.
 */
function partial(update: { set?: Record<string, string>; unset?: string[] }): never {
  return update as never;
}

function lastActivity(channel: Channel): number {
  const last = lastOf(regular(channel.state.messages));
  const at = last?.created_at ?? channel.data?.created_at;
  return at === undefined ? 0 : new Date(at as string | Date).getTime();
}

export class Inbox {
  private readonly channels = new Map<string, Channel>();
  private selected: Channel | null = null;
  private filter: Filter = 'open';
  private readonly typing = new Map<string, string>();
  private discoverTimer: number | undefined;

  private readonly list = element('ul', { id: 'conversations', 'aria-label': 'Conversations' });
  private readonly openFilter = element('button', { type: 'button', 'aria-pressed': 'true' }, 'Open');
  private readonly closedFilter = element('button', { type: 'button', 'aria-pressed': 'false' }, 'Closed');
  private readonly heading = element('h2', { id: 'conversation-title' }, 'No conversation selected');
  private readonly assignee = element('p', { class: 'muted', id: 'assignee' });
  private readonly assign = element('button', { type: 'button', disabled: '' }, 'Assign to me');
  private readonly closeButton = element('button', { type: 'button', disabled: '' }, 'Close conversation');
  private readonly log = element('ol', { role: 'log', 'aria-label': 'Conversation', 'aria-live': 'polite' });
  private readonly typingStatus = element('p', { role: 'status', class: 'typing' });
  private readonly reply = element('textarea', { id: 'reply', rows: '3', maxlength: '5000', disabled: '' });
  private readonly send = element('button', { type: 'submit', disabled: '' }, 'Send');
  private readonly contact = element('dl', { id: 'contact' });
  private readonly status = element('p', { role: 'status', class: 'status' });

  constructor(
    private readonly client: StreamChat,
    private readonly session: AgentSession,
  ) {}

  /** The inbox's markup, in `root`. */
  mount(root: HTMLElement): void {
    const filters = element('div', { role: 'group', 'aria-label': 'Show' }, this.openFilter, this.closedFilter);
    const form = element(
      'form',
      { class: 'reply' },
      element('label', { for: 'reply' }, 'Reply'),
      this.reply,
      this.send,
    );
    root.replaceChildren(
      element(
        'nav',
        { 'aria-labelledby': 'inbox-title', class: 'inbox' },
        element('h2', { id: 'inbox-title' }, 'Inbox'),
        filters,
        this.list,
      ),
      element(
        'main',
        { 'aria-labelledby': 'conversation-title', class: 'conversation' },
        this.heading,
        this.assignee,
        element('div', { class: 'actions' }, this.assign, this.closeButton),
        this.log,
        this.typingStatus,
        form,
        this.status,
      ),
      element(
        'aside',
        { 'aria-labelledby': 'contact-title', class: 'contact' },
        element('h2', { id: 'contact-title' }, 'Contact'),
        this.contact,
      ),
    );
    this.openFilter.addEventListener('click', () => this.setFilter('open'));
    this.closedFilter.addEventListener('click', () => this.setFilter('closed'));
    this.assign.addEventListener('click', () => void this.assignToMe());
    this.closeButton.addEventListener('click', () => void this.toggleClosed());
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.sendReply();
    });
    this.reply.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        void this.sendReply();
      }
    });
    this.reply.addEventListener('input', () => {
      void this.selected?.keystroke().catch(() => undefined);
    });
    for (const type of ['message.new', 'message.updated', 'message.deleted', 'channel.updated', 'member.added'] as const) {
      this.client.on(type, (event) => this.onChange(event));
    }
    this.client.on('typing.start', (event) => this.onTyping(event, true));
    this.client.on('typing.stop', (event) => this.onTyping(event, false));
  }

  async start(): Promise<void> {
    await this.discover();
    this.discoverTimer = window.setInterval(() => void this.discover().catch(() => undefined), DISCOVER_MS);
  }

  stop(): void {
    window.clearInterval(this.discoverTimer);
  }

  /** Asks Stream for the conversations (watching them) and adds those not known yet. */
  private async discover(): Promise<void> {
    const found = await this.client.queryChannels(
      { type: this.session.channelType },
      [{ last_message_at: -1 }],
      { watch: true, state: true, limit: PAGE },
    );
    for (const channel of found) {
      if (channel.cid !== undefined) this.channels.set(channel.cid, channel);
    }
    this.renderList();
  }

  private onChange(event: Event): void {
    const cid = event.cid;
    if (cid !== undefined && !this.channels.has(cid)) {
      void this.discover().catch(() => undefined);
      return;
    }
    if (this.selected !== null && cid === this.selected.cid) {
      this.markSeen(this.selected);
      this.renderConversation();
    }
    this.renderList();
  }

  private onTyping(event: Event, started: boolean): void {
    const cid = event.cid;
    const user = event.user;
    if (cid === undefined || user === undefined || user.id === this.session.userId) return;
    if (started) this.typing.set(cid, user.name ?? user.id);
    else this.typing.delete(cid);
    if (this.selected?.cid === cid) {
      this.typingStatus.textContent = started ? `${user.name ?? user.id} is typing…` : '';
    }
  }

  private setFilter(filter: Filter): void {
    this.filter = filter;
    this.openFilter.setAttribute('aria-pressed', String(filter === 'open'));
    this.closedFilter.setAttribute('aria-pressed', String(filter === 'closed'));
    this.renderList();
  }

  private seenKey(channel: Channel): string {
    return `chat-sync-agent:${this.session.userId}:seen:${channel.cid ?? ''}`;
  }

  private markSeen(channel: Channel): void {
    try {
      localStorage.setItem(this.seenKey(channel), String(Date.now()));
    } catch {
      // Storage refused (private mode): counts start again with the next page.
    }
  }

  private unread(channel: Channel): number {
    let seen = 0;
    try {
      seen = Number(localStorage.getItem(this.seenKey(channel)) ?? '0');
    } catch {
      seen = 0;
    }
    const visitor = visitorOf(channel)?.id;
    return regular(channel.state.messages).filter(
      (m) => m.user?.id === visitor && new Date(m.created_at as string | Date).getTime() > seen,
    ).length;
  }

  private renderList(): void {
    const all = [...this.channels.values()].sort((a, b) => lastActivity(b) - lastActivity(a));
    const shown = all.filter((c) => isClosed(c) === (this.filter === 'closed'));
    let total = 0;
    for (const channel of all) {
      if (channel !== this.selected && !isClosed(channel)) total += this.unread(channel);
    }
    document.title = total > 0 ? `(${total}) Conversations · chat-sync` : 'Conversations · chat-sync';
    this.list.replaceChildren(
      ...shown.map((channel) => {
        const visitor = visitorOf(channel);
        const last = lastOf(regular(channel.state.messages));
        const unread = channel === this.selected ? 0 : this.unread(channel);
        const verified = custom(channel, 'visitor_identity') === 'verified';
        const assigned = customText(channel, 'assignee_name');
        const button = element(
          'button',
          { type: 'button', class: 'entry' },
          element('span', { class: 'name' }, visitor?.name ?? 'Visitor'),
          element('span', { class: verified ? 'verified' : 'unverified' }, verified ? 'Verified' : 'Not verified'),
          element('span', { class: 'unread' }, unread > 0 ? `${unread} unread` : ''),
          element('span', { class: 'last' }, last === undefined ? 'No messages yet' : (last.text ?? '')),
          element('span', { class: 'assigned' }, assigned === null ? 'Unassigned' : `Assigned to ${assigned}`),
        );
        if (channel === this.selected) button.setAttribute('aria-current', 'true');
        button.addEventListener('click', () => void this.select(channel));
        return element('li', {}, button);
      }),
    );
  }

  private async select(channel: Channel): Promise<void> {
    this.selected = channel;
    this.markSeen(channel);
    this.typingStatus.textContent = this.typing.get(channel.cid ?? '') ?? '';
    this.reply.disabled = false;
    this.send.disabled = false;
    this.assign.disabled = false;
    this.closeButton.disabled = false;
    this.renderConversation();
    this.renderList();
    this.reply.focus();
  }

  private renderConversation(): void {
    const channel = this.selected;
    if (channel === null) return;
    const visitor = visitorOf(channel);
    this.heading.textContent = visitor?.name ?? 'Visitor';
    const assigneeId = customText(channel, 'assignee_id');
    const assigneeName = customText(channel, 'assignee_name');
    this.assignee.textContent =
      assigneeName === null ? 'Unassigned' : assigneeId === this.session.userId ? 'Assigned to you' : `Assigned to ${assigneeName}`;
    this.assign.hidden = assigneeId === this.session.userId;
    this.closeButton.textContent = isClosed(channel) ? 'Reopen' : 'Close conversation';
    this.log.replaceChildren(
      ...regular(channel.state.messages).map((message) => {
        const own = message.user?.id === this.session.userId;
        const name = message.user?.name ?? message.user?.id ?? 'someone';
        return element(
          'li',
          { class: own ? 'own' : message.user?.id === visitor?.id ? 'visitor' : 'agent' },
          element('span', { class: 'who' }, own ? `${name} (you)` : name),
          element('span', { class: 'text' }, message.type === 'deleted' ? '(deleted)' : (message.text ?? '')),
        );
      }),
    );
    this.log.scrollTop = this.log.scrollHeight;
    this.renderContact(channel);
  }

  private renderContact(channel: Channel): void {
    const visitor = visitorOf(channel);
    const verified = custom(channel, 'visitor_identity') === 'verified';
    const email = customText(channel, 'visitor_email');
    const contactId = customText(channel, 'contact_id');
    const rows: HTMLElement[] = [
      element('dt', {}, 'Name'),
      element('dd', {}, visitor?.name ?? 'Visitor'),
      element('dt', {}, 'E-mail'),
      element('dd', {}, email ?? 'unknown'),
      element('dt', {}, 'Identity'),
      element('dd', {}, verified ? 'Identity verified by the site' : 'Identity not verified (e-mail as typed)'),
    ];
    if (contactId !== null && this.session.hubspotPortalId !== null) {
      const link = element(
        'a',
        {
          href: `https://app.hubspot.com/contacts/${encodeURIComponent(this.session.hubspotPortalId)}/record/0-1/${encodeURIComponent(contactId)}`,
          target: '_blank',
          rel: 'noopener noreferrer',
        },
        'Open in HubSpot',
      );
      rows.push(element('dt', {}, 'CRM'), element('dd', {}, link));
    }
    this.contact.replaceChildren(...rows);
  }

  /** Joins the conversation if this agent is not a member yet: Stream takes messages from members only. */
  private async join(channel: Channel): Promise<void> {
    if (channel.state.members[this.session.userId] === undefined) {
      await channel.addMembers([this.session.userId]);
    }
  }

  private async assignToMe(): Promise<void> {
    const channel = this.selected;
    if (channel === null) return;
    try {
      await this.join(channel);
      await channel.updatePartial(
        partial({ set: { assignee_id: this.session.userId, assignee_name: this.session.userName } }),
      );
      this.say(`Assigned to you.`);
    } catch (error) {
      this.say(`Could not assign: ${(error as Error).message}`);
    }
    this.renderConversation();
    this.renderList();
  }

  private async toggleClosed(): Promise<void> {
    const channel = this.selected;
    if (channel === null) return;
    try {
      if (isClosed(channel)) {
        await channel.updatePartial(partial({ unset: ['status'] }));
        this.say('Reopened.');
      } else {
        await channel.updatePartial(partial({ set: { status: 'closed' } }));
        this.say('Closed.');
      }
    } catch (error) {
      this.say(`Could not change the status: ${(error as Error).message}`);
    }
    this.renderConversation();
    this.renderList();
  }

  private async sendReply(): Promise<void> {
    const channel = this.selected;
    const text = this.reply.value.trim();
    if (channel === null || text === '' || this.send.disabled) return;
    this.send.disabled = true;
    try {
      await this.join(channel);
      await channel.sendMessage({ text });
      void channel.stopTyping().catch(() => undefined);
      this.reply.value = '';
      this.say('Sent.');
    } catch (error) {
      this.say(`Not sent: ${(error as Error).message}`);
    } finally {
      this.send.disabled = false;
      this.reply.focus();
    }
    this.renderConversation();
    this.renderList();
  }

  private say(text: string): void {
    this.status.textContent = text;
  }
}
