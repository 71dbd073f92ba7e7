// The detail panel: a clicked line's full event JSON (`meta` included),
// copy buttons, and filters from its values: a click on the level, the
// channel, the service, workspace or resource, or the message changes the
// view to that filter (the ones the gateway itself can apply).

import { lineById, lineOf } from "./list.js";
import { LEVELS, MAX_QUERY, view, writeView } from "./view.js";

const $ = (id) => document.getElementById(id);

/** Segments of a channel up to and including each id field. */
const CHANNEL_DEPTH = { service: 2, workspace_id: 3, resource_id: 4 };
const FILTERABLE = new Set(["level", "channel", "message", ...Object.keys(CHANNEL_DEPTH)]);

let selected = null;
let applyView = () => {};

function jsonNode(value, indent, key) {
  const frag = document.createDocumentFragment();
  const pad = "  ".repeat(indent);
  if (value !== null && typeof value === "object") {
    const isArray = Array.isArray(value);
    const entries = isArray ? value.map((v, i) => [i, v]) : Object.entries(value);
    frag.append(isArray ? "[" : "{");
    entries.forEach(([k, v], i) => {
      frag.append("\n" + pad + "  ");
      if (!isArray) {
        const keyEl = document.createElement("span");
        keyEl.className = "k";
        keyEl.textContent = JSON.stringify(k);
        frag.append(keyEl, ": ");
      }
      // Only the event's own top-level fields filter.
      frag.append(jsonNode(v, indent + 1, indent === 0 && !isArray ? k : null));
      if (i < entries.length - 1) frag.append(",");
    });
    frag.append((entries.length ? "\n" + pad : "") + (isArray ? "]" : "}"));
    return frag;
  }
  const v = document.createElement("span");
  v.className = "v " + (typeof value === "string" ? "s" : typeof value === "number" ? "n" : "b");
  v.textContent = JSON.stringify(value);
  if (key && FILTERABLE.has(key) && typeof value === "string") {
    v.classList.add("filter");
    v.dataset.key = key;
    v.dataset.value = value;
    v.title = "Filter by this " + key.replace("_id", "");
  }
  frag.append(v);
  return frag;
}

export function showDetail(line) {
  if (selected) selected.el.classList.remove("selected");
  selected = line;
  line.el.classList.add("selected");
  $("detail-json").replaceChildren(jsonNode(line.event, 0, null));
  $("detail").hidden = false;
  view.sel = line.id;
  writeView(false);
}

export function hideDetail() {
  if (selected) selected.el.classList.remove("selected");
  selected = null;
  $("detail").hidden = true;
  view.sel = "";
  writeView(false);
}

/** Forgets the open line without touching the address (the view restarts). */
export function forgetDetail() {
  selected = null;
  $("detail").hidden = true;
}

/** Opens the line the address names, if the list has it. */
export function restoreSelection(id) {
  const line = id && lineById(id);
  if (line) {
    showDetail(line);
    line.el.scrollIntoView({ block: "center" });
  }
}

function copy(text, button) {
  const done = () => {
    const was = button.dataset.label || button.textContent;
    button.dataset.label = was;
    button.textContent = "Copied";
    setTimeout(() => (button.textContent = was), 1200);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, () => {});
    return;
  }
  // Plain http on another host: the older way still works.
  const t = document.createElement("textarea");
  t.value = text;
  document.body.append(t);
  t.select();
  document.execCommand("copy");
  t.remove();
  done();
}

/** `apply(push)` restarts the view after a filter changed it. */
export function setupDetail(apply) {
  applyView = apply;
  $("list").addEventListener("click", (ev) => {
    const el = ev.target.closest("[data-testid=log-line]");
    const line = el && lineOf(el);
    if (line) showDetail(line);
  });
  $("detail-close").addEventListener("click", hideDetail);
  $("detail-json").addEventListener("click", (ev) => {
    const v = ev.target.closest(".v.filter");
    if (!v || !selected) return;
    const { key, value } = v.dataset;
    if (key === "level") {
      if (LEVELS.includes(value)) view.level = value;
    } else if (key === "channel") view.channels = value;
    else if (key === "message") view.q = value.slice(0, MAX_QUERY);
    else {
      // A service, workspace or resource narrows to that part of the channel.
      view.channels = selected.event.channel.split(":").slice(0, CHANNEL_DEPTH[key]).join(":");
    }
    view.sel = "";
    applyView(true);
  });
  $("copy-json").addEventListener("click", (ev) =>
    selected && copy(JSON.stringify(selected.event, null, 2), ev.currentTarget));
  $("copy-message").addEventListener("click", (ev) =>
    selected && copy(String(selected.event.message), ev.currentTarget));
  $("copy-link").addEventListener("click", (ev) => copy(location.href, ev.currentTarget));
}
