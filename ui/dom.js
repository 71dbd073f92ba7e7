// @ts-check
// The page's elements by id, and new elements with their text. Text is
// only ever set as text, never parsed as HTML.

/**
 * The element with `id` (index.html has it; a missing one is a bug).
 * @param {string} id
 * @returns {HTMLElement}
 */
export function $(id) {
  const e = document.getElementById(id);
  if (!e) throw new Error("the page has no #" + id);
  return e;
}

/**
 * The element with `id`, which is a `type` (an input, a button…).
 * @template {HTMLElement} T
 * @param {string} id
 * @param {{ new (): T, prototype: T }} type
 * @returns {T}
 */
export function $as(id, type) {
  const e = $(id);
  if (!(e instanceof type)) throw new Error("#" + id + " is not the kind of element expected");
  return e;
}

/**
 * A new element, with a class and text when given.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string | null} [cls]
 * @param {string | null} [text]
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}

/**
 * The element an event happened in or under that matches `selector`.
 * @param {Event} ev
 * @param {string} selector
 * @returns {HTMLElement | null}
 */
export function closest(ev, selector) {
  const t = ev.target;
  const found = t instanceof Element ? t.closest(selector) : null;
  return found instanceof HTMLElement ? found : null;
}
