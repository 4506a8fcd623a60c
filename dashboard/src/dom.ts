/** A tiny element builder: the page is small enough not to need a component framework. */
export type Child = Node | string | number | null | undefined | false;
type Attr = string | number | boolean | undefined | ((ev: Event) => void);

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, Attr> = {}, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (typeof value === 'function') el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el: Element, children: (Child | Child[])[]): void {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'object' ? c : String(c));
  }
}

/** Replaces an element's children. */
export function fill(el: Element, ...children: (Child | Child[])[]): void {
  el.replaceChildren();
  append(el, children);
}

export function time(at: string | Date | undefined | null): string {
  if (!at) return '—';
  const d = new Date(at);
  return d.toLocaleTimeString(undefined, { hour12: false });
}

/** The time, with the date when it is not today (a silence may end days from now). */
export function moment(at: string | Date): string {
  const d = new Date(at);
  return d.toDateString() === new Date().toDateString() ? time(d) : d.toLocaleString(undefined, { hour12: false, dateStyle: 'medium', timeStyle: 'medium' });
}

export function percent(rate: number | null | undefined): string {
  return rate === null || rate === undefined ? '—' : `${(rate * 100).toFixed(1)}%`;
}

export function ms(value: number | null | undefined): string {
  return value === null || value === undefined ? '—' : `${value < 10 ? value.toFixed(1) : Math.round(value)} ms`;
}

/** A labelled number of a panel, found by tests and screen readers by its label. */
export function stat(label: string, value: number | string, id?: string): HTMLElement {
  return h('div', { class: 'stat', role: 'group', 'aria-label': label }, h('span', { class: 'value', ...(id ? { id } : {}) }, value), h('span', { class: 'label' }, label));
}

/** A table named for screen readers (and tests) by its label. */
export function table(label: string, head: string[], rows: (Node | string)[][]): HTMLElement {
  return h(
    'table',
    { 'aria-label': label },
    h('thead', {}, h('tr', {}, head.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))),
  );
}
