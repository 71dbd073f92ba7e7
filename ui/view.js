// The view: what the address bar says (channels, level, text, paused,
// selected line, time zone, how many lines to keep), the tokens this tab
// holds, and the query a stream or history page of the view carries.
//
// Nothing here touches the list or the network; the other modules read
// `view` and call `writeView` when they change it.

export const LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"];
export const DEFAULT_MAX = 5000;
export const MAX_QUERY = 256; // the gateway's own limit on `q`

const TOKEN_KEY = "loggate_token";
const ADMIN_KEY = "loggate_admin_token";

/** The view as the address bar describes it (filled by `readView`). */
export const view = {
  channels: "logs:*",
  level: "",
  q: "",
  paused: false,
  sel: "",
  utc: false,
  max: DEFAULT_MAX,
};

/** Reads the address bar into `view`; a `token` there is taken once. */
export function readView() {
  const p = new URLSearchParams(location.search);
  const token = p.get("token");
  if (token) {
    // Kept in this tab, and out of the address bar (and so out of
    // history, bookmarks and Referer headers).
    sessionStorage.setItem(TOKEN_KEY, token);
    p.delete("token");
    const rest = p.toString();
    history.replaceState(null, "", location.pathname + (rest ? "?" + rest : "") + location.hash);
  }
  const max = parseInt(p.get("max") || "", 10);
  Object.assign(view, {
    channels: (p.get("channels") || "logs:*").trim() || "logs:*",
    level: LEVELS.includes(p.get("level")) ? p.get("level") : "",
    q: (p.get("q") || "").slice(0, MAX_QUERY),
    paused: p.get("paused") === "1",
    sel: p.get("sel") || "",
    utc: p.get("utc") === "1",
    max: Number.isFinite(max) && max >= 100 ? Math.min(max, 100000) : DEFAULT_MAX,
  });
}

/** Writes `view` to the address bar: a new history entry when `push`. */
export function writeView(push) {
  const p = new URLSearchParams();
  p.set("channels", view.channels);
  if (view.level) p.set("level", view.level);
  if (view.q) p.set("q", view.q);
  if (view.paused) p.set("paused", "1");
  if (view.sel) p.set("sel", view.sel);
  if (view.utc) p.set("utc", "1");
  if (view.max !== DEFAULT_MAX) p.set("max", String(view.max));
  const url = location.pathname + "?" + p.toString() + location.hash;
  if (push) history.pushState(null, "", url);
  else history.replaceState(null, "", url);
}

/** The query a stream or a history page of this view carries. */
export function viewQuery() {
  const p = new URLSearchParams();
  p.set("channels", view.channels);
  if (view.level) p.set("level", view.level);
  if (view.q) p.set("q", view.q);
  return p;
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(t) {
  sessionStorage.setItem(TOKEN_KEY, t);
}

export function adminToken() {
  return sessionStorage.getItem(ADMIN_KEY) || "";
}

export function setAdminToken(t) {
  sessionStorage.setItem(ADMIN_KEY, t);
}

/** Request headers with this tab's subscriber token, if it has one. */
export function authHeaders(extra) {
  const h = Object.assign({}, extra || {});
  const t = token();
  if (t) h.Authorization = "Bearer " + t;
  return h;
}

/** `{status, message}` of a refused request, from its JSON error body. */
export function refusal(res, body) {
  const msg = body && body.error ? body.error.message : res.statusText;
  return { status: res.status, message: msg || "HTTP " + res.status };
}

/** The JSON body of `res`, or null when it has none. */
export async function jsonBody(res) {
  try {
    return await res.json();
  } catch (_) {
    return null;
  }
}
