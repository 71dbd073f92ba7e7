// The list: a ring of at most `view.max` lines, oldest first, with notices
// where they happened; what arrives while paused; and rendering.
//
// Speed: lines live in chunks of CHUNK_LINES elements. Once a full chunk
// has been laid out, it is "sealed": `content-visibility: auto`, with its
// measured height as its size while off screen, so the browser lays out
// and paints only the chunks on screen, whatever `view.max` is. A chunk is
// sealed only after the browser measured it full: sealed earlier, it would
// stand in with a wrong height and the list would not reach the bottom. Arrivals are rendered in
// animation frames, many lines per DOM update; under a fast stream renders
// are spaced by what they cost (see `render`). Every buffer is bounded by
// `view.max`, so a hidden tab (no animation frames) or a long pause cannot
// grow memory without bound.

import { lineElement, noticeElement, timeText } from "./line.js";
import { arrived, setPausedState } from "./status.js";
import { view, writeView } from "./view.js";

const CHUNK_LINES = 100;
/** A fast stream still renders at least this often. */
const MAX_RENDER_GAP_MS = 100;
const MAX_NOTICES = 200;

const listEl = () => document.getElementById("list");
const scroller = () => document.getElementById("scroller");

/** Lines shown, oldest first: { id, event, el }. */
export const lines = [];
const byElement = new WeakMap();
/** Notice elements shown, oldest first. */
const notices = [];
/** Arrived since the last render: { event } or { notice }. */
let incoming = [];
/** Arrived while paused, waiting to be shown. */
let waiting = [];
/** How many arrived while paused (also those the bound let go). */
let waitingCount = 0;
let frameAsked = false;
let lastRender = -Infinity;
let renderCost = 0;
let onPauseChange = () => {};

/** `f(paused)` runs whenever the view pauses or resumes. */
export function onPause(f) {
  onPauseChange = f;
}

/** Appends to a bounded buffer: past `view.max`, the oldest go. */
function pushBounded(buffer, item) {
  buffer.push(item);
  if (buffer.length > view.max + MAX_NOTICES) buffer.splice(0, buffer.length - view.max);
}

/** A live event: shown at the next render, or kept while paused. */
export function addEvent(e) {
  arrived(1);
  if (view.paused) {
    pushBounded(waiting, { event: e });
    waitingCount += 1;
    document.getElementById("new-count").textContent = String(waitingCount);
    return;
  }
  pushBounded(incoming, { event: e });
  askFrame();
}

/** History lines: shown even while paused (the list would be empty). */
export function addHistory(events) {
  for (const e of events) pushBounded(incoming, { event: e });
  askFrame();
}

/** A notice in the list, where it happened in the stream. */
export function addNotice(text, kind) {
  const item = { notice: noticeElement(text, kind) };
  if (view.paused) pushBounded(waiting, item);
  else {
    pushBounded(incoming, item);
    askFrame();
  }
}

function askFrame() {
  if (!frameAsked) {
    frameAsked = true;
    requestAnimationFrame(render);
  }
}

/**
 * Renders what arrived since the last render. A render costs about the
 * same for one line as for fifty, so while the stream is fast renders are
 * spaced to twice their cost (at most MAX_RENDER_GAP_MS): rendering takes
 * at most a third of the main thread, scrolling and clicks stay smooth,
 * and no line is skipped.
 */
function render(now) {
  frameAsked = false;
  if (incoming.length === 0) return;
  if (now - lastRender < Math.min(MAX_RENDER_GAP_MS, 2 * renderCost)) {
    askFrame();
    return;
  }
  const t0 = performance.now();
  renderNow();
  lastRender = t0;
  renderCost = performance.now() - t0;
}

/** Renders everything that arrived, now. */
export function renderNow() {
  const batch = incoming;
  incoming = [];
  append(batch);
  trim();
  if (!view.paused) scrollToBottom();
}

function newChunk() {
  const c = document.createElement("div");
  c.className = "chunk";
  c.n = 0; // elements in it
  c.h = 0; // its height when sealed
  return c;
}

/** Seals a chunk once the browser has measured it (after a layout). */
const sealer = new ResizeObserver((entries) => {
  for (const { target: c, borderBoxSize } of entries) {
    sealer.unobserve(c);
    if (!c.isConnected) continue;
    c.h = borderBoxSize[0].blockSize;
    c.style.containIntrinsicSize = "auto " + c.h + "px";
    c.classList.add("sealed");
  }
});

/** A chunk lost an element: off screen, it keeps about its size. */
function shrunk(c) {
  if (c.h && c.n > 0) c.h = (c.h * (c.n - 1)) / c.n;
  c.n -= 1;
}

/** Gives a shrunk sealed chunk its new size (once per render, not per line). */
function resize(c) {
  if (c && c.h) c.style.containIntrinsicSize = c.h + "px";
}

function append(items) {
  const list = listEl();
  let chunk = list.lastElementChild;
  for (const item of items) {
    if (!chunk || chunk.n >= CHUNK_LINES) {
      chunk = newChunk();
      list.append(chunk);
    }
    if (item.notice) {
      chunk.append(item.notice);
      notices.push(item.notice);
    } else {
      const el = lineElement(item.event);
      const line = { id: item.event.id, event: item.event, el };
      byElement.set(el, line);
      lines.push(line);
      chunk.append(el);
    }
    chunk.n += 1;
    if (chunk.n === CHUNK_LINES) sealer.observe(chunk);
  }
}

/** Removes the first element of the list (and its chunk when empty). */
function removeFirst() {
  const list = listEl();
  const chunk = list.firstElementChild;
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
function trim() {
  const before = lines.length + notices.length;
  while (lines.length > view.max) {
    const gone = lines.shift();
    // Notices before the oldest line go with it: they told of lines no
    // longer shown.
    for (let el = removeFirst(); el && el !== gone.el; el = removeFirst()) {
      if (notices[0] === el) notices.shift();
    }
  }
  while (notices.length > MAX_NOTICES) {
    const n = notices.shift();
    const chunk = n.parentElement;
    n.remove();
    if (chunk) {
      shrunk(chunk);
      if (!chunk.firstElementChild) chunk.remove();
      else resize(chunk);
    }
  }
  if (lines.length + notices.length < before) resize(listEl().firstElementChild);
}

/** Older lines from history, before everything shown. */
export function prependOlder(events) {
  const room = view.max - lines.length;
  const older = events.slice(Math.max(0, events.length - room));
  const frag = document.createDocumentFragment();
  const added = [];
  let chunk = null;
  for (const e of older) {
    if (!chunk || chunk.n >= CHUNK_LINES) {
      chunk = newChunk();
      frag.append(chunk);
      // Older chunks never grow: each is sealed once measured.
      sealer.observe(chunk);
    }
    const el = lineElement(e);
    const line = { id: e.id, event: e, el };
    byElement.set(el, line);
    added.push(line);
    chunk.append(el);
    chunk.n += 1;
  }
  const s = scroller();
  const height = s.scrollHeight;
  listEl().prepend(frag);
  lines.unshift(...added);
  // Keep what was on screen where it was.
  s.scrollTop += s.scrollHeight - height;
  return added.length;
}

export function clear() {
  lines.length = 0;
  notices.length = 0;
  incoming = [];
  waiting = [];
  waitingCount = 0;
  listEl().replaceChildren();
  document.getElementById("new-count").textContent = "0";
}

export function lineOf(el) {
  return byElement.get(el);
}

export function lineById(id) {
  return lines.find((l) => l.id === id);
}

/** Shows every time again (the time zone changed). */
export function refreshTimes() {
  for (const l of lines) l.el.querySelector(".time").textContent = timeText(l.event.timestamp);
}

function atBottom() {
  const s = scroller();
  return s.scrollHeight - s.scrollTop - s.clientHeight < 40;
}

export function scrollToBottom() {
  const s = scroller();
  s.scrollTop = s.scrollHeight;
}

// ------------------------------------------------------------ pause, live

/**
 * Why the view is paused: only a pause that scrolling started is ended by
 * scrolling back down; the button's (or the address's) waits for Live.
 */
let pausedByScroll = false;

/** Pauses (rendering stops, arrivals wait) or resumes (they are shown). */
export function setPaused(paused, byScroll = false) {
  if (view.paused === paused) return;
  view.paused = paused;
  pausedByScroll = paused && byScroll;
  writeView(false);
  setPausedState(paused);
  if (!paused) {
    incoming = incoming.concat(waiting);
    waiting = [];
    waitingCount = 0;
    document.getElementById("new-count").textContent = "0";
    renderNow();
    scrollToBottom();
  }
  onPauseChange(paused);
}

/**
 * Scrolling up pauses; scrolling back down to the bottom with nothing
 * waiting resumes a pause that scrolling started. Only a move up counts as
 * the reader's pausing: the list's own scrolls go down, and lines growing
 * below never move the position. A scroll event can arrive after the
 * button paused (from the last render's jump to the bottom); it must not
 * undo that pause, hence the `pausedByScroll` check.
 */
export function watchScrolling() {
  const s = scroller();
  let last = s.scrollTop;
  s.addEventListener("scroll", () => {
    const top = s.scrollTop;
    const up = top < last;
    const down = top > last;
    last = top;
    const bottom = atBottom();
    if (up && !bottom && !view.paused && lines.length > 0) setPaused(true, true);
    else if (down && bottom && view.paused && pausedByScroll && waiting.length === 0) setPaused(false);
  });
}
