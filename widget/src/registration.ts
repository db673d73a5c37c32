// The form and the registration API. The checks here mirror the API's (`PersonName` and `Email` in
// functions/chat-sync/src/domain/contact.rs) and answer with the same codes, so a visitor sees the same message
// whether the browser or the server caught the mistake; the server's answer is still the one that counts.

import { parseSession, Session, SessionShapeError } from './session';

export type Field = 'firstName' | 'lastName' | 'email';
export const FIELDS: readonly Field[] = ['firstName', 'lastName', 'email'];

export const LABELS: Record<Field, string> = {
  firstName: 'First name',
  lastName: 'Last name',
  email: 'E-mail',
};

/** The API's error codes for each field (`invalid_first_name`, ...). */
export const CODES: Record<Field, string> = {
  firstName: 'invalid_first_name',
  lastName: 'invalid_last_name',
  email: 'invalid_email',
};

export interface FieldProblem {
  readonly field: Field;
  readonly code: string;
  readonly message: string;
}

export type Form = Record<Field, string>;

const MAX_NAME_CHARS = 100;
// Any C0/C1 control character, as Rust's char::is_control.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const LOCAL_PART = /^[a-z0-9!#$%&'*+/=?^_`{|}~.-]+$/;
const LABEL = /^[a-z0-9-]+$/;

function checkName(field: Field, raw: string): string | null {
  const value = raw.trim();
  if (value === '') return `${LABELS[field]} is required.`;
  if ([...value].length > MAX_NAME_CHARS) {
    return `${LABELS[field]} must be at most ${MAX_NAME_CHARS} characters.`;
  }
  if (CONTROL.test(value)) return `${LABELS[field]} must not contain control characters.`;
  return null;
}

function checkEmail(raw: string): string | null {
  const value = raw.trim().toLowerCase();
  if (value === '') return 'E-mail is required.';
  if (new TextEncoder().encode(value).length > 254) return 'E-mail must be at most 254 characters.';
  const at = value.lastIndexOf('@');
  if (at < 0) return 'E-mail must look like name@example.com.';
  const local = value.slice(0, at);
  const domain = value.slice(at + 1);
  if (local === '' || new TextEncoder().encode(local).length > 64) {
    return 'E-mail must have 1-64 characters before the @.';
  }
  if (!LOCAL_PART.test(local) || local.startsWith('.') || local.endsWith('.') || local.includes('..')) {
    return 'E-mail has characters that are not allowed before the @.';
  }
  const labels = domain.split('.');
  const tld = labels[labels.length - 1] ?? '';
  const domainOk =
    labels.length >= 2 &&
    labels.every(
      (label) => label !== '' && label.length <= 63 && !label.startsWith('-') && !label.endsWith('-') && LABEL.test(label),
    ) &&
    /^[a-z]{2,}$/.test(tld);
  if (!domainOk) return 'E-mail must have a valid domain such as example.com.';
  return null;
}

/** Every problem of the form, in field order (the first is where focus goes). */
export function validate(form: Form): FieldProblem[] {
  const problems: FieldProblem[] = [];
  for (const field of FIELDS) {
    const message = field === 'email' ? checkEmail(form[field]) : checkName(field, form[field]);
    if (message !== null) problems.push({ field, code: CODES[field], message });
  }
  return problems;
}

/** A refused or failed registration: `field` set when one input is at fault (shown at that field). */
export class RegistrationError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly field: Field | null,
  ) {
    super(message);
  }
}

function isField(value: unknown): value is Field {
  return typeof value === 'string' && (FIELDS as readonly string[]).includes(value);
}

/** The API's `error` for a field (`"email: must look like …"`) as the visitor reads it at that field. */
function fieldMessage(field: Field, text: string): string {
  const reason = text.trim().replace(new RegExp(`^${field}:\\s*`), '');
  const message = `${LABELS[field]} ${reason}`;
  return /[.!?]$/.test(message) ? message : `${message}.`;
}

/**
 * `POST {"firstName","lastName","email"[,"identityToken"]}` → the session. Throws `RegistrationError` with the
 * API's `{"error","code","field"}`, or a code of our own when the API could not be reached or answered nonsense.
 */
export async function register(
  url: string,
  form: Form,
  identityToken: string | null,
): Promise<Session> {
  const body: Record<string, string> = {
    firstName: form.firstName.trim(),
    lastName: form.lastName.trim(),
    email: form.email.trim(),
  };
  if (identityToken !== null) body.identityToken = identityToken;
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      credentials: 'omit',
    });
  } catch {
    throw new RegistrationError(
      'The chat service cannot be reached. Check your connection and try again.',
      'network_error',
      null,
    );
  }
  let answer: unknown = null;
  try {
    answer = await response.json();
  } catch {
    answer = null;
  }
  if (!response.ok) {
    const error = (answer ?? {}) as Record<string, unknown>;
    const code = typeof error.code === 'string' ? error.code : `http_${response.status}`;
    const field = isField(error.field) ? error.field : null;
    const text =
      field !== null && typeof error.error === 'string'
        ? fieldMessage(field, error.error)
        : serverMessage(code, response.status);
    throw new RegistrationError(text, code, field);
  }
  try {
    return parseSession(answer);
  } catch (error) {
    const detail = error instanceof SessionShapeError ? error.message : 'unreadable answer';
    throw new RegistrationError(
      `The chat could not start (${detail}). Please try again later.`,
      'invalid_answer',
      null,
    );
  }
}

/** What the visitor reads for an answer that is not about one of the form's fields. */
function serverMessage(code: string, status: number): string {
  if (status === 429 || code === 'upstream_rate_limited') {
    return 'Too many attempts right now. Please wait a moment and try again.';
  }
  switch (code) {
    // The site's identity token (data-identity-token) expired while the page was open: a reload signs a new one.
    case 'identity_token_expired':
      return 'Your sign-in on this page has expired. Please reload the page and try again.';
    // The site's identity token (data-identity-token) does not fit the e-mail, or the site requires one.
    case 'identity_not_verified':
    case 'identity_required':
    case 'invalid_identity_token':
      return 'We could not confirm who you are. Please sign in to the site again and reload the page.';
    case 'origin_not_allowed':
      return 'This site is not allowed to start chats (see ALLOWED_ORIGINS).';
    default:
      return status >= 500
        ? 'The chat could not start right now. Please try again in a moment.'
        : 'The chat could not start. Please check the form and try again.';
  }
}
