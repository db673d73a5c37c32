// Entry point of chat-sync-widget.js: reads the embed tag and mounts the widget once the page has a body.

import { EmbedError, findEmbedScript, parseEmbed } from './embed';
import { Widget } from './widget';

/** Marks the page once mounted, so a tag included twice does not show two launchers. */
const MOUNTED = 'data-chat-sync-widget';

function mount(script: HTMLScriptElement): void {
  if (document.querySelector(`[${MOUNTED}]`) !== null) return;
  let options;
  try {
    options = parseEmbed(script);
  } catch (error) {
    if (!(error instanceof EmbedError)) throw error;
    console.error(`chat-sync widget: ${error.message}`);
    return;
  }
  const host = document.createElement('div');
  host.setAttribute(MOUNTED, '');
  document.body.append(host);
  void new Widget(options, host).start();
}

// document.currentScript is only set while this top level runs: find the tag now, mount when there is a body.
const script = findEmbedScript();
if (script === null) {
  console.error('chat-sync widget: no <script data-registration-url="..."> tag found');
} else if (document.body !== null) {
  mount(script);
} else {
  document.addEventListener('DOMContentLoaded', () => mount(script), { once: true });
}
