// The dev page's own script (bundled by `make widget` into widget/dist/dev-demo.js): the CRM view of the visitor's
// contact. The visitor's side is the real widget, loaded by its embed tag; it announces its conversation with an
// event. The agents' side is the agent console (/agent/), signed in through the sandbox identity provider.

// Each CRM read is three HubSpot requests (property, notes, their bodies) of the app's 100 per 10 s.
const POLL_MS = 2000;
/** The widget's event (see widget/src/widget.ts). */
const CONVERSATION_EVENT = 'chat-sync:conversation';

interface Conversation {
  channelType: string;
  channelId: string;
  customerId: string;
}

interface Contact {
  contactId: string;
  email: string;
  transcript: string;
  notes: { id: string; body: string }[];
}

function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`the page lacks #${id}`);
  return found as T;
}

/** Calls the dev server; a non-2xx answer throws with the API's `error` text. */
async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const response = await fetch(path, init);
  const body = (await response.json().catch(() => null)) as (T & { error?: string }) | null;
  if (!response.ok) {
    throw new Error(body?.error ?? `${response.status} ${response.statusText}`);
  }
  return body as T;
}

async function loadConfig(): Promise<void> {
  const mode = byId('mode');
  try {
    const config = await api<{ mode: string }>('/dev/config');
    mode.dataset.mode = config.mode;
    mode.textContent = config.mode === 'live' ? 'live: real HubSpot and Stream' : 'sandbox: local HubSpot and Stream';
  } catch (error) {
    mode.textContent = `dev server unreachable: ${(error as Error).message}`;
  }
}

/**
 * The CRM view: what HubSpot holds for the conversation's contact, read every two seconds, one request at a time.
 * The notes' HTML is what chat-sync wrote (visitor text escaped), shown as HubSpot would: each in a sandboxed frame
 * (no scripts, no same-origin access), so even a note someone else wrote in the CRM cannot act on this page.
 */
class CrmView {
  private conversation: Conversation | null = null;
  private timer: number | undefined;
  private transcript: string | null = null;
  private notesKey = '';

  follow(conversation: Conversation): void {
    this.conversation = conversation;
    this.transcript = null;
    this.notesKey = '';
    byId('transcript').textContent = '';
    byId('notes').replaceChildren();
    window.clearTimeout(this.timer);
    void this.poll(conversation);
  }

  private async poll(conversation: Conversation): Promise<void> {
    const query = new URLSearchParams({ channelType: conversation.channelType, channelId: conversation.channelId });
    try {
      const contact = await api<Contact>(`/dev/transcript?${query}`);
      if (conversation !== this.conversation) return;
      byId('contact').hidden = false;
      byId('contact-id').textContent = contact.contactId;
      byId('contact-email').textContent = contact.email;
      byId('crm-status').textContent = `Read from the CRM at ${new Date().toLocaleTimeString()}.`;
      this.renderNotes(contact.notes);
      if (contact.transcript !== this.transcript) {
        this.transcript = contact.transcript;
        const pre = byId('transcript');
        pre.textContent = contact.transcript;
        pre.scrollTop = pre.scrollHeight;
        pre.classList.add('changed');
        window.setTimeout(() => pre.classList.remove('changed'), 700);
      }
    } catch (error) {
      byId('crm-status').textContent = `Could not read the contact: ${(error as Error).message}`;
    }
    if (conversation === this.conversation) {
      this.timer = window.setTimeout(() => void this.poll(conversation), POLL_MS);
    }
  }

  private renderNotes(notes: Contact['notes']): void {
    const key = JSON.stringify(notes);
    if (key === this.notesKey) return;
    this.notesKey = key;
    byId('notes').replaceChildren(
      ...notes.map((note) => {
        const item = document.createElement('li');
        const frame = document.createElement('iframe');
        frame.setAttribute('sandbox', '');
        frame.title = `Note ${note.id}`;
        frame.srcdoc = note.body;
        item.append(frame);
        return item;
      }),
    );
  }
}

const crm = new CrmView();
window.addEventListener(CONVERSATION_EVENT, (event) => {
  const conversation = (event as CustomEvent<Conversation>).detail;
  byId('visitor-channel').textContent = `${conversation.channelType}:${conversation.channelId}`;
  crm.follow(conversation);
});
void loadConfig();
