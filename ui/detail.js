// @ts-check
// The detail panel: a clicked line's full event JSON (`meta` included),
// copy buttons, and filters from its values: a click on the level, the
// channel, the service, workspace or resource, or the message changes the
// view to that filter (the ones the gateway itself can apply).

import { $, closest, el } from "./dom.js";
import { writeAddress } from "./tab.js";
import { LEVELS, MAX_QUERY } from "./view.js";

/** @typedef {import("./list.js").Line} Line */
/** @typedef {import("./list.js").LogList} LogList */
/** @typedef {import("./view.js").View} View */

/** Segments of a channel up to and including each id field. */
const CHANNEL_DEPTH = { service: 2, workspace_id: 3, resource_id: 4 };
/** @type {Set<string>} */
const FILTERABLE = new Set(["level", "channel", "message", ...Object.keys(CHANNEL_DEPTH)]);

/**
 * `value` as indented JSON, its top-level filterable fields marked.
 * @param {unknown} value
 * @param {number} indent
 * @param {string | number | null} key its field, when a top-level one
 * @returns {DocumentFragment}
 */
function jsonNode(value, indent, key) {
  const frag = document.createDocumentFragment();
  const pad = "  ".repeat(indent);
  if (value !== null && typeof value === "object") {
    const isArray = Array.isArray(value);
    /** @type {[string | number, unknown][]} */
    const entries = isArray ? value.map((v, i) => [i, v]) : Object.entries(value);
    frag.append(isArray ? "[" : "{");
    entries.forEach(([k, v], i) => {
      frag.append("\n" + pad + "  ");
      if (!isArray) frag.append(el("span", "k", JSON.stringify(k)), ": ");
      // Only the event's own top-level fields filter.
      frag.append(jsonNode(v, indent + 1, indent === 0 && !isArray ? k : null));
      if (i < entries.length - 1) frag.append(",");
    });
    frag.append((entries.length ? "\n" + pad : "") + (isArray ? "]" : "}"));
    return frag;
  }
  const kind = typeof value === "string" ? "s" : typeof value === "number" ? "n" : "b";
  const v = el("span", "v " + kind, JSON.stringify(value));
  if (typeof key === "string" && FILTERABLE.has(key) && typeof value === "string") {
    v.classList.add("filter");
    v.dataset.key = key;
    v.dataset.value = value;
    v.title = "Filter by this " + key.replace("_id", "");
  }
  frag.append(v);
  return frag;
}

/**
 * Copies `text`; the button says so for a moment.
 * @param {string} text
 * @param {HTMLElement} button
 */
function copy(text, button) {
  const done = () => {
    const was = button.dataset.label || button.textContent || "";
    button.dataset.label = was;
    button.textContent = "Copied";
    setTimeout(() => (button.textContent = was), 1200);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, () => {});
    return;
  }
  // Plain http on another host: the older way still works.
  const t = el("textarea");
  t.value = text;
  document.body.append(t);
  t.select();
  document.execCommand("copy");
  t.remove();
  done();
}

export class Detail {
  /**
   * @param {View} view its `sel` names the open line
   * @param {LogList} list the lines that can be opened
   * @param {(push: boolean) => void} applyView restarts the view after a filter changed it
   */
  constructor(view, list, applyView) {
    this.view = view;
    this.list = list;
    this.applyView = applyView;
    /** The open line. @type {Line | null} */
    this.selected = null;
  }

  /** @param {Line} line */
  show(line) {
    if (this.selected) this.selected.el.classList.remove("selected");
    this.selected = line;
    line.el.classList.add("selected");
    $("detail-json").replaceChildren(jsonNode(line.event, 0, null));
    $("detail").hidden = false;
    this.view.sel = line.id;
    writeAddress(this.view, false);
  }

  hide() {
    if (this.selected) this.selected.el.classList.remove("selected");
    this.selected = null;
    $("detail").hidden = true;
    this.view.sel = "";
    writeAddress(this.view, false);
  }

  /** Forgets the open line without touching the address (the view restarts). */
  forget() {
    this.selected = null;
    $("detail").hidden = true;
  }

  /** Opens the line the address named, if the list has it. @param {string} id */
  restore(id) {
    const line = id ? this.list.lineById(id) : undefined;
    if (line) {
      this.show(line);
      line.el.scrollIntoView({ block: "center" });
    }
  }

  /** A filter from a value of the open line. @param {string} key @param {string} value */
  filter(key, value) {
    if (!this.selected) return;
    const view = this.view;
    if (key === "level") {
      if (LEVELS.includes(value)) view.level = value;
    } else if (key === "channel") view.channels = value;
    else if (key === "message") view.q = value.slice(0, MAX_QUERY);
    else {
      // A service, workspace or resource narrows to that part of the channel.
      const depth = CHANNEL_DEPTH[/** @type {keyof typeof CHANNEL_DEPTH} */ (key)];
      view.channels = this.selected.event.channel.split(":").slice(0, depth).join(":");
    }
    view.sel = "";
    this.applyView(true);
  }

  setup() {
    $("list").addEventListener("click", (ev) => {
      const e = closest(ev, "[data-testid=log-line]");
      const line = e && this.list.lineOf(e);
      if (line) this.show(line);
    });
    $("detail-close").addEventListener("click", () => this.hide());
    $("detail-json").addEventListener("click", (ev) => {
      const v = closest(ev, ".v.filter");
      if (v) this.filter(v.dataset.key || "", v.dataset.value || "");
    });
    $("copy-json").addEventListener("click", () =>
      this.selected && copy(JSON.stringify(this.selected.event, null, 2), $("copy-json")));
    $("copy-message").addEventListener("click", () =>
      this.selected && copy(String(this.selected.event.message), $("copy-message")));
    $("copy-link").addEventListener("click", () => copy(location.href, $("copy-link")));
  }
}
