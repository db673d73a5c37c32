// The widget's styles, adopted by its shadow root: the host page's CSS cannot reach in, and ours cannot leak out.
// A constructed stylesheet, not a <style> element, so a host whose Content-Security-Policy forbids inline styles
// still shows the widget.

const CSS = `
:host { all: initial; }
.root {
  --accent: #2456d6; --ink: #1d2330; --muted: #5d6678; --line: #d9dee8; --paper: #fff; --error: #b42318;
  position: fixed; right: 20px; bottom: 20px; z-index: 2147483000;
  display: flex; flex-direction: column; align-items: flex-end; gap: 12px;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--ink);
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
button, input, textarea { font: inherit; color: inherit; }
button { cursor: pointer; }
:focus-visible { outline: 3px solid #9db8ff; outline-offset: 2px; }
.launcher {
  order: 2; border: 0; border-radius: 999px; padding: 12px 20px; font-weight: 600;
  background: var(--accent); color: #fff; box-shadow: 0 4px 14px rgba(20, 30, 60, .25);
}
.badge { display: inline-block; min-width: 1.4em; margin-left: 8px; padding: 0 6px; border-radius: 999px;
  background: #fff; color: var(--accent); font-size: .8rem; }
.panel {
  order: 1; width: min(380px, calc(100vw - 40px)); height: min(560px, calc(100vh - 110px));
  display: flex; flex-direction: column; background: var(--paper); border: 1px solid var(--line);
  border-radius: 14px; box-shadow: 0 10px 30px rgba(20, 30, 60, .2); overflow: hidden;
}
.panel > header { display: flex; align-items: center; gap: 8px; padding: 12px 14px; background: var(--accent); color: #fff; }
.panel h2 { flex: 1; margin: 0; font-size: 1.05rem; }
.close { border: 0; background: transparent; color: #fff; font-size: 1.4rem; line-height: 1; padding: 2px 8px; border-radius: 6px; }
.end { border: 1px solid rgba(255, 255, 255, .7); background: transparent; color: #fff; font-size: .8rem;
  padding: 3px 10px; border-radius: 999px; }
.notice { margin: 0; padding: 8px 14px; font-size: .85rem; background: #fff4d6; color: #5c3d00; }
.notice:empty { display: none; }
.typing { margin: 0; padding: 2px 14px; min-height: 1.2em; font-size: .8rem; color: #555; }
.notice[data-kind="error"] { background: #fdecea; color: var(--error); }
.body { flex: 1; min-height: 0; display: flex; flex-direction: column; padding: 14px; overflow-y: auto; }
form.register label { display: block; font-size: .85rem; font-weight: 600; margin: 10px 0 4px; }
form.register input { width: 100%; padding: 8px 10px; border: 1px solid #b9c1d0; border-radius: 8px; background: #fff; }
input[aria-invalid="true"] { border-color: var(--error); }
.field-error { margin: 4px 0 0; font-size: .8rem; color: var(--error); }
.field-error:empty { display: none; }
.primary { margin-top: 16px; width: 100%; padding: 10px; border: 0; border-radius: 8px; background: var(--accent);
  color: #fff; font-weight: 600; }
button:disabled { opacity: .55; cursor: not-allowed; }
.form-error { margin: 12px 0 0; padding: 8px 10px; border-radius: 8px; background: #fdecea; color: var(--error); font-size: .85rem; }
.form-error:empty { display: none; }
.conversation { flex: 1; min-height: 0; display: flex; flex-direction: column; gap: 10px; }
ol.messages { flex: 1; min-height: 0; margin: 0; padding: 0; list-style: none; overflow-y: auto;
  display: flex; flex-direction: column; gap: 8px; }
ol.messages:empty::before { content: "Say hello: the team usually answers within minutes."; color: var(--muted);
  font-size: .85rem; margin: auto; text-align: center; }
.message { max-width: 85%; padding: 6px 10px; border-radius: 10px; background: #eef1f6; white-space: pre-wrap;
  overflow-wrap: anywhere; align-self: flex-start; }
.message.own { align-self: flex-end; background: #e8f0ff; }
.message.deleted { font-style: italic; color: var(--muted); }
.who { display: block; font-size: .72rem; color: var(--muted); }
form.composer { display: flex; flex-direction: column; gap: 4px; }
form.composer label { font-size: .8rem; color: var(--muted); }
.row { display: flex; gap: 6px; }
textarea { flex: 1; min-width: 0; resize: none; padding: 8px 10px; border: 1px solid #b9c1d0; border-radius: 8px; }
.send { padding: 8px 14px; border: 0; border-radius: 8px; background: var(--accent); color: #fff; font-weight: 600; }
`;

let sheet: CSSStyleSheet | null = null;

export function stylesheet(): CSSStyleSheet {
  if (sheet === null) {
    sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
  }
  return sheet;
}
