/**
 * A few DOM helpers instead of a framework: elements are built with `h`, text is always set as
 * text (never parsed as HTML), so nothing a server sends can become markup.
 */

type Child = Node | string | null | undefined | false;
type Attrs = Record<string, string | boolean | number | undefined | ((ev: Event) => void)>;

/** `h('button', {onclick, 'aria-label': …}, 'text', child…)`. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, ...children);
  return el;
}

/** Appends children, skipping empty ones. */
export function append(el: Element, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'string' ? document.createTextNode(c) : c);
  }
}

/** Replaces an element's children. */
export function replace(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, ...children);
}

let ids = 0;
/** A fresh element id (for label/for pairs). */
export function uid(prefix: string): string {
  ids += 1;
  return `${prefix}-${ids}`;
}

/** A labelled form control: `<label for=id>text</label>` and the control. */
export function field(label: string, control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement, hint?: string): HTMLElement {
  if (!control.id) control.id = uid('f');
  const wrap = h('div', { class: 'field' }, h('label', { for: control.id }, label), control);
  if (hint) {
    const hintId = uid('hint');
    control.setAttribute('aria-describedby', hintId);
    append(wrap, h('small', { id: hintId }, hint));
  }
  return wrap;
}

/** A status badge: ok, bad, warn or info. */
export function badge(kind: 'ok' | 'bad' | 'warn' | 'info', text: string): HTMLElement {
  return h('span', { class: `badge ${kind}` }, text);
}

/** Nanoseconds since the epoch as an ISO time (UTC). */
export function isoFromNanos(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  return new Date(ms).toISOString();
}
