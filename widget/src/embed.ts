// The embed tag's attributes, parsed once: everything after this works with checked values.
//
//   <script src=".../chat-sync-widget.js" data-registration-url="https://.../registrations" async></script>
//
// Optional: data-identity-token (the identity token the host site signs for its signed-in visitor: an HS256 JWT of
// the e-mail and an expiry, see docs/security.md), data-title (the panel's heading) and data-color (the accent colour,
// any CSS colour).

export interface EmbedOptions {
  /** Absolute URL of the registration API (`POST`). */
  readonly registrationUrl: string;
  /** Passed to registration as `identityToken` so a logged-in visitor is registered as verified. */
  readonly identityToken: string | null;
  readonly title: string;
  /** A value `CSS.supports('color', …)` accepts; null keeps the built-in colour. */
  readonly color: string | null;
}

export const DEFAULT_TITLE = 'Chat with us';
const MAX_TITLE_CHARS = 80;

/** Why the tag cannot start a widget; said once in the console, where the site's developer looks. */
export class EmbedError extends Error {}

export function parseEmbed(script: HTMLScriptElement): EmbedOptions {
  const data = script.dataset;
  const raw = data.registrationUrl?.trim();
  if (!raw) {
    throw new EmbedError('data-registration-url is missing on the <script> tag');
  }
  let url: URL;
  try {
    // Relative URLs resolve against the page, as the browser would for the script's own src.
    url = new URL(raw, document.baseURI);
  } catch {
    throw new EmbedError(`data-registration-url is not a URL: ${raw}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new EmbedError(`data-registration-url must be http(s), got ${url.protocol}`);
  }
  const title = (data.title ?? '').trim().slice(0, MAX_TITLE_CHARS) || DEFAULT_TITLE;
  const color = data.color?.trim() ?? '';
  return {
    registrationUrl: url.href,
    identityToken: data.identityToken?.trim() || null,
    title,
    // A value the browser does not take as a colour is ignored rather than breaking the styles.
    color: color && CSS.supports('color', color) ? color : null,
  };
}

/**
 * The tag that loaded this bundle. `document.currentScript` is set while a classic (also `async`) script runs its
 * top level, which is when this is called; the attribute lookup covers a loader that injected the tag itself.
 */
export function findEmbedScript(): HTMLScriptElement | null {
  const current = document.currentScript;
  if (current instanceof HTMLScriptElement && current.dataset.registrationUrl !== undefined) {
    return current;
  }
  return document.querySelector<HTMLScriptElement>('script[data-registration-url]');
}
