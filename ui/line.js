// One line of the list as DOM: time, level, channel and message, with the
// stable hooks (`data-testid="log-line"`, `data-id`, `data-level`,
// `data-channel`); and a notice (lag, gap, reconnect) between lines.
// Text is only ever set as text, never parsed as HTML.

import { LEVELS, view } from "./view.js";

const pad = (n, w) => String(n).padStart(w || 2, "0");

/** `ts` in the view's time zone, to the millisecond. */
export function timeText(ts) {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return ts || "";
  if (view.utc) return d.toISOString().replace("T", " ").replace("Z", "").slice(0, 23);
  return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
    pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + "." +
    pad(d.getMilliseconds(), 3);
}

/** `text` with every case-insensitive occurrence of the view's `q` marked. */
function highlighted(text) {
  const frag = document.createDocumentFragment();
  const q = view.q.toLowerCase();
  if (!q) {
    frag.append(text);
    return frag;
  }
  const lower = text.toLowerCase();
  let at = 0;
  for (let i = lower.indexOf(q); i >= 0; i = lower.indexOf(q, at)) {
    frag.append(text.slice(at, i));
    const m = document.createElement("mark");
    m.textContent = text.slice(i, i + q.length);
    frag.append(m);
    at = i + q.length;
  }
  frag.append(text.slice(at));
  return frag;
}

function span(cls, text) {
  const s = document.createElement("span");
  s.className = cls;
  s.textContent = text;
  return s;
}

/** The element of event `e`. */
export function lineElement(e) {
  const div = document.createElement("div");
  const level = LEVELS.includes(e.level) ? e.level : "info";
  div.className = "line level-" + level;
  div.dataset.testid = "log-line";
  div.dataset.id = e.id;
  div.dataset.level = level;
  div.dataset.channel = e.channel;
  const time = span("time", timeText(e.timestamp));
  time.title = e.timestamp;
  const ch = span("channel", e.channel);
  ch.title = e.channel;
  const msg = document.createElement("span");
  msg.className = "message";
  msg.append(highlighted(String(e.message)));
  div.append(time, span("level", level), ch, msg);
  return div;
}

/** A notice: `kind` "warn" (something was lost) or "info". */
export function noticeElement(text, kind) {
  const div = document.createElement("div");
  div.className = "notice " + (kind || "warn");
  div.dataset.testid = "notice";
  div.dataset.kind = kind || "warn";
  div.setAttribute("role", "status");
  const at = new Date();
  div.append(span("time", timeText(at.toISOString())), document.createTextNode(text));
  return div;
}
