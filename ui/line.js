// @ts-check
// One line of the list as DOM: time, level, channel and message, with the
// stable hooks (`data-testid="log-line"`, `data-id`, `data-level`,
// `data-channel`); and a notice (lag, gap, reconnect) between lines.
// Text is only ever set as text, never parsed as HTML.

import { el } from "./dom.js";
import { LEVELS } from "./view.js";

/** @typedef {import("./api.js").LogEvent} LogEvent */
/** @typedef {import("./view.js").View} View */

/** @param {number} n @param {number} [w] */
const pad = (n, w) => String(n).padStart(w || 2, "0");

/**
 * `ts` to the millisecond, in UTC or local time.
 * @param {string} ts
 * @param {boolean} utc
 */
export function timeText(ts, utc) {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return ts || "";
  if (utc) return d.toISOString().replace("T", " ").replace("Z", "").slice(0, 23);
  return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
    pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + "." +
    pad(d.getMilliseconds(), 3);
}

/**
 * `text` with every case-insensitive occurrence of `q` marked.
 * @param {string} text
 * @param {string} q
 */
function highlighted(text, q) {
  const frag = document.createDocumentFragment();
  q = q.toLowerCase();
  if (!q) {
    frag.append(text);
    return frag;
  }
  const lower = text.toLowerCase();
  let at = 0;
  for (let i = lower.indexOf(q); i >= 0; i = lower.indexOf(q, at)) {
    frag.append(text.slice(at, i));
    frag.append(el("mark", null, text.slice(i, i + q.length)));
    at = i + q.length;
  }
  frag.append(text.slice(at));
  return frag;
}

/**
 * The element of event `e`, as `view` shows it (time zone, `q` marked).
 * @param {LogEvent} e
 * @param {View} view
 */
export function lineElement(e, view) {
  const div = el("div");
  const level = LEVELS.includes(e.level) ? e.level : "info";
  div.className = "line level-" + level;
  div.dataset.testid = "log-line";
  div.dataset.id = e.id;
  div.dataset.level = level;
  div.dataset.channel = e.channel;
  const time = el("span", "time", timeText(e.timestamp, view.utc));
  time.title = e.timestamp;
  const ch = el("span", "channel", e.channel);
  ch.title = e.channel;
  const msg = el("span", "message");
  msg.append(highlighted(String(e.message), view.q));
  div.append(time, el("span", "level", level), ch, msg);
  return div;
}

/**
 * A notice: `kind` "warn" (something was lost) or "info".
 * @param {string} text
 * @param {"warn" | "info"} [kind]
 * @param {boolean} [utc] its time in UTC
 */
export function noticeElement(text, kind, utc = false) {
  const div = el("div");
  div.className = "notice " + (kind || "warn");
  div.dataset.testid = "notice";
  div.dataset.kind = kind || "warn";
  div.setAttribute("role", "status");
  const at = new Date();
  div.append(el("span", "time", timeText(at.toISOString(), utc)), document.createTextNode(text));
  return div;
}
