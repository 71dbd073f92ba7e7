// @ts-check
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

import { channelPage, needsToken } from "./api.js";
import { $, $as, closest, el } from "./dom.js";
import { timeText } from "./line.js";
import { token } from "./tab.js";

/** @typedef {import("./api.js").ChannelInfo} ChannelInfo */
/** @typedef {import("./view.js").View} View */

const FETCH_LIMIT = 200; // channels asked for per lookup
const SHOWN = 50;        // channels offered at most
const DEBOUNCE_MS = 150;
const CACHE_SIZE = 20;   // answers kept, by request
const SEGMENT = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * The request that finds the channels beginning with `term`, or null
 * when no channel can.
 * @param {string} term
 */
function requestFor(term) {
  const p = new URLSearchParams();
  p.set("limit", String(FETCH_LIMIT));
  const segs = term.split(":");
  if (segs.length === 1) return "logs".startsWith(term) ? p.toString() : null;
  if (segs[0] !== "logs" || segs.length > 4) return null;
  const wild = (/** @type {string} */ s) => s === "*";
  const typed = segs.slice(1).filter((s, i) => s !== "" || i < segs.length - 2);
  if (!typed.every((s) => wild(s) || SEGMENT.test(s))) return null;
  // Everything that begins with a name comes right after it. (No
  // `pattern`: the token's grants may not cover `logs:etl` even where
  // they cover channels below it.)
  if (typed.length && !typed.some(wild)) p.set("cursor", ["logs", ...typed].join(":"));
  return p.toString();
}

/**
 * Whether channel `name` begins with `term`, a `*` standing for a segment.
 * @param {string} name
 * @param {string} term
 */
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

/**
 * A channel's events, newest and watchers, in words.
 * @param {ChannelInfo} c
 * @param {boolean} utc
 */
function describe(c, utc) {
  const parts = [c.events === 1 ? "1 event" : c.events + " events"];
  if (c.newest) parts.push("newest " + timeText(c.newest, utc).slice(0, 19));
  if (c.subscribers) parts.push(c.subscribers + " watching");
  return parts.join(" · ");
}

export class ChannelBox {
  /**
   * @param {View} view its time zone, for the offers' times
   * @param {() => void} picked runs when a channel was picked
   */
  constructor(view, picked) {
    this.view = view;
    this.picked = picked;
    this.input = $as("f-channels", HTMLInputElement);
    this.box = $("channel-options");
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.timer = undefined;
    /** Bumped per lookup: an answer to an older one is dropped. */
    this.generation = 0;
    /** The option highlighted, -1 for none. */
    this.active = -1;
    /** The token a 401 or 403 was answered to: no more lookups with it. @type {string | null} */
    this.refusedFor = null;
    /** Answers by request, oldest first. @type {Map<string, ChannelInfo[]>} */
    this.cache = new Map();
  }

  /** The box's text split at its last channel: what stays, and the term. */
  split() {
    const text = this.input.value;
    const at = text.lastIndexOf(",");
    return { keep: text.slice(0, at + 1), term: text.slice(at + 1).trim() };
  }

  /**
   * The channels a request lists; null when refused.
   * @param {string} query
   * @returns {Promise<ChannelInfo[] | null>}
   */
  async channels(query) {
    const cached = this.cache.get(query);
    if (cached) return cached;
    const answer = await channelPage(query);
    if (!answer.ok) {
      if (needsToken(answer.refusal)) this.refusedFor = token();
      return null;
    }
    if (!answer.body || !Array.isArray(answer.body.channels)) return null;
    this.cache.set(query, answer.body.channels);
    if (this.cache.size > CACHE_SIZE) this.cache.delete(this.cache.keys().next().value || "");
    return answer.body.channels;
  }

  async lookUp() {
    const gen = ++this.generation;
    const { term } = this.split();
    const query = requestFor(term);
    if (query === null || this.refusedFor === token()) return this.show([], term);
    let found;
    try {
      found = await this.channels(query);
    } catch (_) {
      found = null; // unreachable: the view's own status says so
    }
    if (gen !== this.generation || document.activeElement !== this.input) return;
    const offered = (found || [])
      .filter((c) => typeof c.channel === "string" && begins(c.channel, term) && c.channel !== term)
      .slice(0, SHOWN);
    this.show(offered, term);
  }

  /**
   * Offers `offered`, looked up for `term` (kept in `data-term`, so that
   * a test knows the lookup is done even when it offers nothing).
   * @param {ChannelInfo[]} offered
   * @param {string} term
   */
  show(offered, term) {
    const { box, input } = this;
    box.dataset.term = term;
    box.replaceChildren();
    this.active = -1;
    offered.forEach((c, i) => {
      const li = el("li");
      li.id = "channel-option-" + i;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", "false");
      li.dataset.testid = "channel-option";
      li.dataset.channel = c.channel;
      li.append(el("span", "name", c.channel), el("span", "meta", describe(c, this.view.utc)));
      box.append(li);
    });
    const open = offered.length > 0;
    box.hidden = !open;
    input.setAttribute("aria-expanded", String(open));
    input.removeAttribute("aria-activedescendant");
  }

  close() {
    this.generation += 1;
    clearTimeout(this.timer);
    this.box.hidden = true;
    this.box.replaceChildren();
    this.active = -1;
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
  }

  /** @param {number} i */
  highlight(i) {
    const options = this.box.children;
    if (!options.length) return;
    this.active = (i + options.length) % options.length;
    [...options].forEach((o, k) => o.setAttribute("aria-selected", String(k === this.active)));
    this.input.setAttribute("aria-activedescendant", options[this.active].id);
    options[this.active].scrollIntoView({ block: "nearest" });
  }

  /** @param {string} name */
  pick(name) {
    this.input.value = this.split().keep + name;
    this.close();
    this.picked();
  }

  /** The option highlighted, or the one clicked: its channel. @param {Element | null} option */
  pickOption(option) {
    if (option instanceof HTMLElement) this.pick(option.dataset.channel || "");
  }

  setup() {
    const { input, box } = this;
    input.addEventListener("input", () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.lookUp(), DEBOUNCE_MS);
    });
    input.addEventListener("keydown", (ev) => {
      if (box.hidden) {
        if (ev.key === "ArrowDown") this.lookUp();
        return;
      }
      if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
        ev.preventDefault();
        this.highlight(this.active + (ev.key === "ArrowDown" ? 1 : -1));
      } else if (ev.key === "Enter" && this.active >= 0) {
        ev.preventDefault();
        this.pickOption(box.children[this.active]);
      } else if (ev.key === "Escape") {
        ev.preventDefault();
        this.close();
      }
    });
    input.addEventListener("blur", () => this.close());
    // Keep the focus in the box, so that its blur does not close the list
    // before the click lands.
    box.addEventListener("mousedown", (ev) => ev.preventDefault());
    box.addEventListener("click", (ev) => this.pickOption(closest(ev, "[role=option]")));
  }
}
