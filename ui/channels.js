// The channel box offers the channels that exist: as the user types, the
// channels within the tab's token's grants that hold history or have
// subscribers (GET /api/logs/channels) whose names begin with what is
// typed, in a list under the box (a combobox: arrows, Enter, Escape, or a
// click). Picking one puts it in the box and applies the view.
//
// The box may hold several channels (`a,b`): only the last is completed.
// What is typed is the request's `cursor`, so a gateway with many channels
// still offers the right ones: the listing goes in name order, and every
// channel that begins with `logs:etl:w` comes right after `logs:etl:w`.
// (With a `*` typed, the first page is filtered instead.) Names are set as
// text, never parsed as HTML.

import { timeText } from "./line.js";
import { authHeaders, jsonBody, token } from "./view.js";

const API = "../api/logs/channels";
const FETCH_LIMIT = 200; // channels asked for per lookup
const SHOWN = 50;        // channels offered at most
const DEBOUNCE_MS = 150;
const CACHE_SIZE = 20;   // answers kept, by request
const SEGMENT = /^[A-Za-z0-9_-]{1,64}$/;

const $ = (id) => document.getElementById(id);

let input = null;
let box = null;
let onPick = () => {};
let timer = null;
/** Bumped per lookup: an answer to an older one is dropped. */
let generation = 0;
let active = -1;
/** The token a 401 or 403 was answered to: no more lookups with it. */
let refusedFor = null;
const cache = new Map();

/** The request that finds the channels beginning with `term`, or null
 * when no channel can. */
function requestFor(term) {
  const p = new URLSearchParams();
  p.set("limit", String(FETCH_LIMIT));
  const segs = term.split(":");
  if (segs.length === 1) return "logs".startsWith(term) ? p.toString() : null;
  if (segs[0] !== "logs" || segs.length > 4) return null;
  const wild = (s) => s === "*";
  const typed = segs.slice(1).filter((s, i) => s !== "" || i < segs.length - 2);
  if (!typed.every((s) => wild(s) || SEGMENT.test(s))) return null;
  // Everything that begins with a name comes right after it. (No
  // `pattern`: the token's grants may not cover `logs:etl` even where
  // they cover channels below it.)
  if (typed.length && !typed.some(wild)) p.set("cursor", ["logs", ...typed].join(":"));
  return p.toString();
}

/** Whether channel `name` begins with `term`, a `*` standing for a segment. */
function begins(name, term) {
  const want = term.split(":");
  const have = name.split(":");
  if (have.length < want.length) return false;
  const last = want.length - 1;
  for (let i = 0; i < last; i++) {
    if (want[i] !== "*" && want[i] !== have[i]) return false;
  }
  return have[last].startsWith(want[last]);
}

/** The box's text split at its last channel: what stays, and the term. */
function split() {
  const text = input.value;
  const at = text.lastIndexOf(",");
  return { keep: text.slice(0, at + 1), term: text.slice(at + 1).trim() };
}

async function channels(query) {
  if (cache.has(query)) return cache.get(query);
  const res = await fetch(API + "?" + query, { headers: authHeaders(), cache: "no-store" });
  const body = await jsonBody(res);
  if (!res.ok || !body || !Array.isArray(body.channels)) {
    if (res.status === 401 || res.status === 403) refusedFor = token();
    return null;
  }
  cache.set(query, body.channels);
  if (cache.size > CACHE_SIZE) cache.delete(cache.keys().next().value);
  return body.channels;
}

async function lookUp() {
  const gen = ++generation;
  const { term } = split();
  const query = requestFor(term);
  if (query === null || refusedFor === token()) return show([], term);
  let found;
  try {
    found = await channels(query);
  } catch (_) {
    found = null; // unreachable: the view's own status says so
  }
  if (gen !== generation || document.activeElement !== input) return;
  const offered = (found || [])
    .filter((c) => typeof c.channel === "string" && begins(c.channel, term) && c.channel !== term)
    .slice(0, SHOWN);
  show(offered, term);
}

function describe(c) {
  const parts = [c.events === 1 ? "1 event" : c.events + " events"];
  if (c.newest) parts.push("newest " + timeText(c.newest).slice(0, 19));
  if (c.subscribers) parts.push(c.subscribers + " watching");
  return parts.join(" · ");
}

/** Offers `offered`, looked up for `term` (kept in `data-term`, so that
 * a test knows the lookup is done even when it offers nothing). */
function show(offered, term) {
  box.dataset.term = term;
  box.replaceChildren();
  active = -1;
  offered.forEach((c, i) => {
    const li = document.createElement("li");
    li.id = "channel-option-" + i;
    li.setAttribute("role", "option");
    li.setAttribute("aria-selected", "false");
    li.dataset.testid = "channel-option";
    li.dataset.channel = c.channel;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = c.channel;
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = describe(c);
    li.append(name, meta);
    box.append(li);
  });
  const open = offered.length > 0;
  box.hidden = !open;
  input.setAttribute("aria-expanded", String(open));
  input.removeAttribute("aria-activedescendant");
}

function close() {
  generation += 1;
  clearTimeout(timer);
  box.hidden = true;
  box.replaceChildren();
  active = -1;
  input.setAttribute("aria-expanded", "false");
  input.removeAttribute("aria-activedescendant");
}

function highlight(i) {
  const options = box.children;
  if (!options.length) return;
  active = (i + options.length) % options.length;
  [...options].forEach((o, k) => o.setAttribute("aria-selected", String(k === active)));
  input.setAttribute("aria-activedescendant", options[active].id);
  options[active].scrollIntoView({ block: "nearest" });
}

function pick(name) {
  input.value = split().keep + name;
  close();
  onPick();
}

/** Wires the channel box; `picked()` runs when a channel was picked. */
export function setupChannels(picked) {
  input = $("f-channels");
  box = $("channel-options");
  onPick = picked;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(lookUp, DEBOUNCE_MS);
  });
  input.addEventListener("keydown", (ev) => {
    if (box.hidden) {
      if (ev.key === "ArrowDown") lookUp();
      return;
    }
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      ev.preventDefault();
      highlight(active + (ev.key === "ArrowDown" ? 1 : -1));
    } else if (ev.key === "Enter" && active >= 0) {
      ev.preventDefault();
      pick(box.children[active].dataset.channel);
    } else if (ev.key === "Escape") {
      ev.preventDefault();
      close();
    }
  });
  input.addEventListener("blur", close);
  // Keep the focus in the box, so that its blur does not close the list
  // before the click lands.
  box.addEventListener("mousedown", (ev) => ev.preventDefault());
  box.addEventListener("click", (ev) => {
    const li = ev.target.closest("[role=option]");
    if (li) pick(li.dataset.channel);
  });
}
