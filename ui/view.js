// @ts-check
// The view as the address bar says it: channels, level, text, paused,
// selected line, time zone, how many lines to keep; read from and written
// to a query string, and the query a stream or history page of the view
// carries.
//
// Pure: no DOM, no storage, no network (the unit tests run it in Node).
// `tab.js` puts the query string in the address bar; main.js holds the one
// `View` object and hands it to the modules that read or change it.

export const LEVELS = Object.freeze(["trace", "debug", "info", "warn", "error", "fatal"]);
export const DEFAULT_MAX = 5000;
const MIN_MAX = 100;
const MAX_MAX = 100000;
export const MAX_QUERY = 256; // the gateway's own limit on `q`
const DEFAULT_CHANNELS = "logs:*";

/**
 * @typedef {object} View
 * @property {string} channels the channel pattern(s), comma-separated
 * @property {string} level the least level shown, "" for all
 * @property {string} q text a message must contain, "" for any
 * @property {boolean} paused arrivals wait instead of being shown
 * @property {string} sel the event id whose detail is open, "" for none
 * @property {boolean} utc times in UTC rather than local time
 * @property {number} max how many lines the list keeps
 */

/** @returns {View} */
export function defaultView() {
  return { channels: DEFAULT_CHANNELS, level: "", q: "", paused: false, sel: "", utc: false, max: DEFAULT_MAX };
}

/**
 * The view a query string (`location.search`) describes; what it lacks
 * or gets wrong is the default.
 * @param {string} search
 * @returns {View}
 */
export function parseView(search) {
  const p = new URLSearchParams(search);
  const level = p.get("level") || "";
  const max = parseInt(p.get("max") || "", 10);
  return {
    channels: (p.get("channels") || DEFAULT_CHANNELS).trim() || DEFAULT_CHANNELS,
    level: LEVELS.includes(level) ? level : "",
    q: (p.get("q") || "").slice(0, MAX_QUERY),
    paused: p.get("paused") === "1",
    sel: p.get("sel") || "",
    utc: p.get("utc") === "1",
    max: Number.isFinite(max) && max >= MIN_MAX ? Math.min(max, MAX_MAX) : DEFAULT_MAX,
  };
}

/**
 * A `token` in a query string, and the query string without it, so
 * that the token can leave the address bar.
 * @param {string} search
 * @returns {{ token: string, search: string }}
 */
export function takeToken(search) {
  const p = new URLSearchParams(search);
  const token = p.get("token") || "";
  p.delete("token");
  const rest = p.toString();
  return { token, search: rest ? "?" + rest : "" };
}

/**
 * The query string of `view` ("?channels=…"): only what differs from
 * the default, besides the channels.
 * @param {View} view
 * @returns {string}
 */
export function viewSearch(view) {
  const p = new URLSearchParams();
  p.set("channels", view.channels);
  if (view.level) p.set("level", view.level);
  if (view.q) p.set("q", view.q);
  if (view.paused) p.set("paused", "1");
  if (view.sel) p.set("sel", view.sel);
  if (view.utc) p.set("utc", "1");
  if (view.max !== DEFAULT_MAX) p.set("max", String(view.max));
  return "?" + p.toString();
}

/**
 * The query a stream or a history page of `view` carries.
 * @param {View} view
 * @returns {URLSearchParams}
 */
export function viewQuery(view) {
  const p = new URLSearchParams();
  p.set("channels", view.channels);
  if (view.level) p.set("level", view.level);
  if (view.q) p.set("q", view.q);
  return p;
}

/**
 * The view's channels as a list (the chat takes them so).
 * @param {View} view
 * @returns {string[]}
 */
export function channelList(view) {
  return view.channels.split(",").map((c) => c.trim()).filter(Boolean);
}
