// @ts-check
// The list: a ring of at most `view.max` lines, oldest first, with notices
// where they happened; what arrives while paused; and rendering.
//
// Speed: lines live in chunks of CHUNK_LINES elements. Once a full chunk
// has been laid out, it is "sealed": `content-visibility: auto`, with its
// measured height as its size while off screen, so the browser lays out
// and paints only the chunks on screen, whatever `view.max` is. A chunk is
// sealed only after the browser measured it full: sealed earlier, it would
// stand in with a wrong height and the list would not reach the bottom.
// Arrivals are rendered in animation frames, many lines per DOM update;
// under a fast stream renders are spaced by what they cost (see `render`).
// Every buffer is bounded by `view.max`, so a hidden tab (no animation
// frames) or a long pause cannot grow memory without bound.

import { $, el } from "./dom.js";
import { lineElement, noticeElement, timeText } from "./line.js";
import { writeAddress } from "./tab.js";

/** @typedef {import("./api.js").LogEvent} LogEvent */
/** @typedef {import("./status.js").Status} Status */
/** @typedef {import("./view.js").View} View */

/**
 * A line shown.
 * @typedef {{ id: string, event: LogEvent, el: HTMLElement }} Line
 */
/**
 * Arrived, not yet shown: an event, or a notice's element.
 * @typedef {{ event: LogEvent, notice?: undefined } | { notice: HTMLElement }} Item
 */
/**
 * A chunk of the list: `n` elements; `h` its height once sealed.
 * @typedef {HTMLElement & { n: number, h: number }} Chunk
 */

const CHUNK_LINES = 100;
/** A fast stream still renders at least this often. */
const MAX_RENDER_GAP_MS = 100;
const MAX_NOTICES = 200;

/** @returns {Chunk} */
function newChunk() {
  return Object.assign(el("div", "chunk"), { n: 0, h: 0 });
}

/** @param {Element | null} e @returns {Chunk | null} */
const asChunk = (e) => /** @type {Chunk | null} */ (e);

/** A chunk lost an element: off screen, it keeps about its size. @param {Chunk} c */
function shrunk(c) {
  if (c.h && c.n > 0) c.h = (c.h * (c.n - 1)) / c.n;
  c.n -= 1;
}

/** Gives a shrunk sealed chunk its new size (once per render, not per line). @param {Chunk | null} c */
function resize(c) {
  if (c && c.h) c.style.containIntrinsicSize = c.h + "px";
}

/** Seals a chunk once the browser has measured it (after a layout). */
const sealer = new ResizeObserver((entries) => {
  for (const { target, borderBoxSize } of entries) {
    const c = /** @type {Chunk} */ (target);
    sealer.unobserve(c);
    if (!c.isConnected) continue;
    c.h = borderBoxSize[0].blockSize;
    c.style.containIntrinsicSize = "auto " + c.h + "px";
    c.classList.add("sealed");
  }
});

export class LogList {
  /**
   * @param {View} view what it shows, and how many lines it keeps
   * @param {Status} status counts arrivals, shows the paused state
   * @param {(paused: boolean) => void} onPause runs whenever the view pauses or resumes
   */
  constructor(view, status, onPause) {
    this.view = view;
    this.status = status;
    this.onPause = onPause;
    /** Lines shown, oldest first. @type {Line[]} */
    this.lines = [];
    /** @type {WeakMap<Element, Line>} */
    this.byElement = new WeakMap();
    /** Notice elements shown, oldest first. @type {HTMLElement[]} */
    this.notices = [];
    /** Arrived since the last render. @type {Item[]} */
    this.incoming = [];
    /** Arrived while paused, waiting to be shown. @type {Item[]} */
    this.waiting = [];
    /** How many arrived while paused (also those the bound let go). */
    this.waitingCount = 0;
    this.frameAsked = false;
    this.lastRender = -Infinity;
    this.renderCost = 0;
    /**
     * Why the view is paused: only a pause that scrolling started is
     * ended by scrolling back down; the button's (or the address's) waits
     * for Live.
     */
    this.pausedByScroll = false;
  }

  /** How many lines are shown. */
  get size() {
    return this.lines.length;
  }

  /** Appends to a bounded buffer: past `view.max`, the oldest go. @param {Item[]} buffer @param {Item} item */
  pushBounded(buffer, item) {
    buffer.push(item);
    if (buffer.length > this.view.max + MAX_NOTICES) buffer.splice(0, buffer.length - this.view.max);
  }

  /** @param {number} n */
  showNewCount(n) {
    $("new-count").textContent = String(n);
  }

  /** A live event: shown at the next render, or kept while paused. @param {LogEvent} e */
  addEvent(e) {
    this.status.arrived(1);
    if (this.view.paused) {
      this.pushBounded(this.waiting, { event: e });
      this.waitingCount += 1;
      this.showNewCount(this.waitingCount);
      return;
    }
    this.pushBounded(this.incoming, { event: e });
    this.askFrame();
  }

  /** History lines: shown even while paused (the list would be empty). @param {LogEvent[]} events */
  addHistory(events) {
    for (const e of events) this.pushBounded(this.incoming, { event: e });
    this.askFrame();
  }

  /**
   * A notice in the list, where it happened in the stream.
   * @param {string} text
   * @param {"warn" | "info"} [kind]
   */
  addNotice(text, kind) {
    const item = { notice: noticeElement(text, kind, this.view.utc) };
    if (this.view.paused) this.pushBounded(this.waiting, item);
    else {
      this.pushBounded(this.incoming, item);
      this.askFrame();
    }
  }

  askFrame() {
    if (!this.frameAsked) {
      this.frameAsked = true;
      requestAnimationFrame((now) => this.render(now));
    }
  }

  /**
   * Renders what arrived since the last render. A render costs about the
   * same for one line as for fifty, so while the stream is fast renders
   * are spaced to twice their cost (at most MAX_RENDER_GAP_MS): rendering
   * takes at most a third of the main thread, scrolling and clicks stay
   * smooth, and no line is skipped.
   * @param {number} now
   */
  render(now) {
    this.frameAsked = false;
    if (this.incoming.length === 0) return;
    if (now - this.lastRender < Math.min(MAX_RENDER_GAP_MS, 2 * this.renderCost)) {
      this.askFrame();
      return;
    }
    const t0 = performance.now();
    this.renderNow();
    this.lastRender = t0;
    this.renderCost = performance.now() - t0;
  }

  /** Renders everything that arrived, now. */
  renderNow() {
    const batch = this.incoming;
    this.incoming = [];
    this.append(batch);
    this.trim();
    if (!this.view.paused) this.scrollToBottom();
  }

  /** @param {LogEvent} e @returns {Line} */
  newLine(e) {
    const line = { id: e.id, event: e, el: lineElement(e, this.view) };
    this.byElement.set(line.el, line);
    return line;
  }

  /** @param {Item[]} items */
  append(items) {
    const list = $("list");
    let chunk = asChunk(list.lastElementChild);
    for (const item of items) {
      if (!chunk || chunk.n >= CHUNK_LINES) {
        chunk = newChunk();
        list.append(chunk);
      }
      if (item.notice) {
        chunk.append(item.notice);
        this.notices.push(item.notice);
      } else {
        const line = this.newLine(item.event);
        this.lines.push(line);
        chunk.append(line.el);
      }
      chunk.n += 1;
      if (chunk.n === CHUNK_LINES) sealer.observe(chunk);
    }
  }

  /** Removes the first element of the list (and its chunk when empty). */
  removeFirst() {
    const chunk = asChunk($("list").firstElementChild);
    if (!chunk) return null;
    const first = chunk.firstElementChild;
    if (first) {
      first.remove();
      shrunk(chunk);
    }
    if (!chunk.firstElementChild) chunk.remove();
    return first;
  }

  /** Keeps at most `view.max` lines and MAX_NOTICES notices. */
  trim() {
    const { lines, notices } = this;
    const before = lines.length + notices.length;
    while (lines.length > this.view.max) {
      const gone = /** @type {Line} */ (lines.shift());
      // Notices before the oldest line go with it: they told of lines no
      // longer shown.
      for (let e = this.removeFirst(); e && e !== gone.el; e = this.removeFirst()) {
        if (notices[0] === e) notices.shift();
      }
    }
    while (notices.length > MAX_NOTICES) {
      const n = /** @type {HTMLElement} */ (notices.shift());
      const chunk = asChunk(n.parentElement);
      n.remove();
      if (chunk) {
        shrunk(chunk);
        if (!chunk.firstElementChild) chunk.remove();
        else resize(chunk);
      }
    }
    if (lines.length + notices.length < before) resize(asChunk($("list").firstElementChild));
  }

  /** Older lines from history, before everything shown. @param {LogEvent[]} events */
  prependOlder(events) {
    const room = this.view.max - this.lines.length;
    const older = events.slice(Math.max(0, events.length - room));
    const frag = document.createDocumentFragment();
    /** @type {Line[]} */
    const added = [];
    /** @type {Chunk | null} */
    let chunk = null;
    for (const e of older) {
      if (!chunk || chunk.n >= CHUNK_LINES) {
        chunk = newChunk();
        frag.append(chunk);
        // Older chunks never grow: each is sealed once measured.
        sealer.observe(chunk);
      }
      const line = this.newLine(e);
      added.push(line);
      chunk.append(line.el);
      chunk.n += 1;
    }
    const s = $("scroller");
    const height = s.scrollHeight;
    $("list").prepend(frag);
    this.lines.unshift(...added);
    // Keep what was on screen where it was.
    s.scrollTop += s.scrollHeight - height;
    return added.length;
  }

  clear() {
    this.lines.length = 0;
    this.notices.length = 0;
    this.incoming = [];
    this.waiting = [];
    this.waitingCount = 0;
    $("list").replaceChildren();
    this.showNewCount(0);
  }

  /** The line an element shows. @param {Element} e */
  lineOf(e) {
    return this.byElement.get(e);
  }

  /** @param {string} id */
  lineById(id) {
    return this.lines.find((l) => l.id === id);
  }

  /** Shows every time again (the time zone changed). */
  refreshTimes() {
    for (const l of this.lines) {
      const t = l.el.querySelector(".time");
      if (t) t.textContent = timeText(l.event.timestamp, this.view.utc);
    }
  }

  atBottom() {
    const s = $("scroller");
    return s.scrollHeight - s.scrollTop - s.clientHeight < 40;
  }

  scrollToBottom() {
    const s = $("scroller");
    s.scrollTop = s.scrollHeight;
  }

  /**
   * Pauses (rendering stops, arrivals wait) or resumes (they are shown).
   * @param {boolean} paused
   * @param {boolean} [byScroll] scrolling up paused it
   */
  setPaused(paused, byScroll = false) {
    if (this.view.paused === paused) return;
    this.view.paused = paused;
    this.pausedByScroll = paused && byScroll;
    writeAddress(this.view, false);
    this.status.setPaused(paused);
    if (!paused) {
      this.incoming = this.incoming.concat(this.waiting);
      this.waiting = [];
      this.waitingCount = 0;
      this.showNewCount(0);
      this.renderNow();
      this.scrollToBottom();
    }
    this.onPause(paused);
  }

  /**
   * Scrolling up pauses; scrolling back down to the bottom with nothing
   * waiting resumes a pause that scrolling started. Only a move up counts
   * as the reader's pausing: the list's own scrolls go down, and lines
   * growing below never move the position. A scroll event can arrive
   * after the button paused (from the last render's jump to the bottom);
   * it must not undo that pause, hence the `pausedByScroll` check.
   */
  watchScrolling() {
    const s = $("scroller");
    let last = s.scrollTop;
    s.addEventListener("scroll", () => {
      const top = s.scrollTop;
      const up = top < last;
      const down = top > last;
      last = top;
      const bottom = this.atBottom();
      if (up && !bottom && !this.view.paused && this.lines.length > 0) this.setPaused(true, true);
      else if (down && bottom && this.view.paused && this.pausedByScroll && this.waiting.length === 0) this.setPaused(false);
    });
  }
}
