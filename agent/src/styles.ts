// The console's styles as a constructed stylesheet: a host whose Content-Security-Policy allows no inline style
// (style-src 'self') still shows it.

const CSS = `
:root { --ink: #1d2330; --muted: #5d6678; --line: #d9dee8; --paper: #fff; --page: #f3f5f9; --accent: #2456d6;
  --own: #eaf7ef; --visitor: #e8f0ff; --error: #b42318;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--ink); background: var(--page); }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; }
header.top { display: flex; align-items: center; gap: 12px; padding: 10px 18px; background: var(--paper);
  border-bottom: 1px solid var(--line); }
header.top h1 { font-size: 1.1rem; margin: 0; flex: 1; }
#app { display: grid; grid-template-columns: minmax(240px, 1fr) minmax(360px, 2fr) minmax(220px, 1fr); gap: 14px;
  padding: 14px 18px; align-items: start; }
@media (max-width: 900px) { #app { grid-template-columns: 1fr; } }
nav, main, aside, .signin { background: var(--paper); border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; }
h2 { font-size: 1rem; margin: 0 0 8px; }
button { font: inherit; padding: 6px 12px; border-radius: 8px; border: 1px solid var(--accent); background: var(--accent);
  color: #fff; cursor: pointer; }
button[aria-pressed="false"] { background: #fff; color: var(--accent); }
button:disabled { opacity: .5; cursor: not-allowed; }
:focus-visible { outline: 3px solid #9db8ff; outline-offset: 2px; }
#conversations { list-style: none; padding: 0; margin: 10px 0 0; display: flex; flex-direction: column; gap: 6px; }
#conversations button.entry { width: 100%; text-align: left; background: #fff; color: var(--ink); border-color: var(--line);
  display: grid; grid-template-columns: 1fr auto; gap: 2px 8px; }
#conversations button.entry[aria-current="true"] { border-color: var(--accent); box-shadow: 0 0 0 2px #c9d7ff; }
.entry .name { font-weight: 600; }
.entry .verified { color: #1e7a45; font-size: .8rem; }
.entry .unverified { color: var(--muted); font-size: .8rem; }
.entry .unread:not(:empty) { grid-column: 2; background: var(--accent); color: #fff; border-radius: 999px; padding: 0 8px; font-size: .8rem; }
.entry .last, .entry .assigned { grid-column: 1 / -1; color: var(--muted); font-size: .85rem; overflow: hidden;
  text-overflow: ellipsis; white-space: nowrap; }
.actions { display: flex; gap: 8px; margin: 6px 0 10px; }
ol[role="log"] { list-style: none; margin: 0; padding: 10px; min-height: 240px; max-height: 55vh; overflow-y: auto;
  background: #fafbfd; border: 1px solid var(--line); border-radius: 10px; display: flex; flex-direction: column; gap: 8px; }
ol[role="log"] li { max-width: 80%; padding: 6px 10px; border-radius: 10px; white-space: pre-wrap; overflow-wrap: anywhere; }
ol[role="log"] li.visitor { align-self: flex-start; background: var(--visitor); }
ol[role="log"] li.own, ol[role="log"] li.agent { align-self: flex-end; background: var(--own); }
ol[role="log"] .who { display: block; font-size: .72rem; color: var(--muted); }
.typing { min-height: 1.4em; color: var(--muted); font-size: .85rem; margin: 4px 0; }
form.reply { display: grid; grid-template-columns: 1fr auto; gap: 6px; align-items: end; }
form.reply label { grid-column: 1 / -1; font-weight: 600; font-size: .85rem; }
textarea { font: inherit; padding: 8px; border: 1px solid #b9c1d0; border-radius: 8px; resize: vertical; }
.status, .muted { color: var(--muted); font-size: .85rem; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 10px; margin: 0; font-size: .9rem; }
dt { color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; }
[role="alert"] { color: var(--error); }
`;

export function adoptStyles(): void {
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(CSS);
  document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
}
