// Building the widget's elements in code: no templates parsed from strings, so no text ever becomes markup.

type Attributes = Record<string, string | boolean>;

/** `<tag attr=...>children</tag>`; `true` sets an empty attribute, `false` leaves it out. */
export function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === true) node.setAttribute(name, '');
    else if (value !== false) node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}
