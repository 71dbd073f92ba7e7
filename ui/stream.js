// Talking to the gateway: the view's newest history page, older pages,
// the NDJSON download, and the live stream resumed from where history
// ended (no seam: no duplicate, no gap).
//
// The stream is read with fetch() rather than EventSource: the token
// travels in an Authorization header (not the URL), a refused connection
// shows its status and message (EventSource gives up silently on
// 401/429/503), and the page decides when to reconnect: with backoff,
// after `Retry-After`, always with the last event id it has.

import { addEvent, addHistory, addNotice, prependOlder, lines } from "./list.js";
import { connectionState, setConnection } from "./status.js";
import { authHeaders, jsonBody, refusal, view, viewQuery } from "./view.js";

const API = "../api/logs/";
const HISTORY_LINES = 500;  // shown from history before going live
const OLDER_PAGE = 500;     // lines per "Load older"
const DOWNLOAD_PAGE = 1000; // the gateway's largest page
const DOWNLOAD_PAGES = 50;  // at most 50,000 lines per download
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30000;

const $ = (id) => document.getElementById(id);

let controller = null;
/** Bumped by every (re)start: answers of an older generation are ignored. */
let generation = 0;
let attempt = 0;
let retryTimer = null;
let lastId = "";
let olderCursor = null;
let expired = false;
let onToken = () => {};

/** `f(message)` runs when the gateway wants a (new) token. */
export function onTokenNeeded(f) {
  onToken = f;
}

/** Ids grow in the order the gateway accepts events (fixed width, so as text too). */
function newer(a, b) {
  return a > b ? a : b;
}

async function getJSON(url) {
  const res = await fetch(url, { headers: authHeaders(), cache: "no-store" });
  return { res, body: await jsonBody(res) };
}

/** Stops the stream and forgets where it was (the view changes). */
export function stop() {
  generation += 1;
  if (controller) controller.abort();
  controller = null;
  clearTimeout(retryTimer);
  attempt = 0;
  lastId = "";
  olderCursor = null;
  $("load-older").hidden = true;
}

/** History, then the live stream from where it ends. */
export function begin() {
  stop();
  setConnection("connecting");
  return historyThenLive();
}

async function historyThenLive() {
  const gen = generation;
  const p = viewQuery();
  p.set("before", "end");
  p.set("limit", String(Math.min(HISTORY_LINES, view.max)));
  let page;
  try {
    page = await getJSON(API + "history?" + p.toString());
  } catch (_) {
    if (gen !== generation) return false;
    if (attempt === 0) addNotice("The gateway is unreachable; retrying.", "info");
    retryLater("gateway unreachable", null, historyThenLive);
    return false;
  }
  if (gen !== generation) return false;
  const { res, body } = page;
  if (!res.ok) {
    const r = refusal(res, body);
    // 401: no token or a bad one; 403: one that does not cover the view.
    if (res.status === 401 || res.status === 403) onToken(r.message);
    else if (res.status === 429 || res.status === 503) {
      if (attempt === 0) addNotice("History refused (" + res.status + "): " + r.message + "; retrying.", "info");
      retryLater(res.status === 429 ? "rate limited" : "gateway busy", retryAfter(res), historyThenLive);
    } else {
      setConnection("error", r.message);
      addNotice("History refused (" + res.status + "): " + r.message);
    }
    return false;
  }
  addHistory(body.logs);
  if (body.logs.length) lastId = body.logs[body.logs.length - 1].id;
  // The newest event the gateway had accepted when it read the page: a
  // filtered page may end long before it.
  if (body.last_id) lastId = newer(lastId, body.last_id);
  olderCursor = body.prev_cursor;
  $("load-older").hidden = !olderCursor;
  connect();
  return true;
}

function retryAfter(res) {
  const s = parseInt(res.headers.get("Retry-After") || "", 10);
  return Number.isFinite(s) ? s * 1000 : null;
}

function retryLater(reason, afterMs, what) {
  const backoff = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(attempt, 6));
  // Jittered, so that many viewers of a restarted gateway come back spread out.
  const wait = afterMs != null ? afterMs * (1 + Math.random() / 5) : backoff / 2 + Math.random() * backoff / 2;
  attempt += 1;
  setConnection("reconnecting", reason);
  clearTimeout(retryTimer);
  retryTimer = setTimeout(what || connect, wait);
}

/** Reads an SSE body and hands each frame to `onFrame`. */
async function readFrames(body, onFrame) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true });
    // The gateway ends frames with "\n\n"; split once per chunk.
    const parts = buf.split("\n\n");
    buf = parts.pop();
    for (const raw of parts) {
      const frame = { event: "message", data: "", id: null };
      const data = [];
      for (const line of raw.split("\n")) {
        if (line.startsWith(":")) continue;
        const i = line.indexOf(":");
        const field = i < 0 ? line : line.slice(0, i);
        const val = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
        if (field === "event") frame.event = val;
        else if (field === "data") data.push(val);
        else if (field === "id") frame.id = val;
      }
      frame.data = data.join("\n");
      if (data.length || frame.event !== "message") onFrame(frame);
    }
  }
}

function describeGap(g) {
  const why = {
    history_trimmed: "older lines were no longer kept",
    replay_truncated: "more was missed than one reconnect carries",
    unknown_epoch: "the gateway restarted; lines from before are gone",
    cluster_loss: "lines were lost between gateway nodes",
  }[g.reason] || g.reason;
  const lost = g.lost != null ? g.lost + " line(s) missing" : "some lines may be missing";
  const since = g.resumed_from ? ", resumed from " + g.resumed_from : "";
  return "Gap: " + lost + " (" + why + ")" + since + ".";
}

function onFrame(f) {
  let data = null;
  try {
    data = f.data ? JSON.parse(f.data) : null;
  } catch (_) {
    data = null;
  }
  switch (f.event) {
    case "ready":
      if (attempt > 0) addNotice("Reconnected.", "info");
      attempt = 0;
      setConnection("live");
      break;
    case "log":
      if (data) {
        lastId = data.id || lastId;
        addEvent(data);
      }
      break;
    case "lag":
      addNotice("Lag: " + (data ? data.dropped : "some") + " line(s) dropped: this view could not keep up.");
      break;
    case "gap":
      if (data) addNotice(describeGap(data));
      break;
    case "shutdown":
      addNotice("The gateway is shutting down; reconnecting.", "info");
      break;
    case "expired":
      expired = true;
      break;
    default:
      break;
  }
}

async function connect() {
  clearTimeout(retryTimer);
  const gen = ++generation;
  if (controller) controller.abort();
  controller = new AbortController();
  expired = false;
  const headers = authHeaders({ Accept: "text/event-stream" });
  if (lastId) headers["Last-Event-ID"] = lastId;
  let res;
  try {
    res = await fetch(API + "stream?" + viewQuery().toString(), {
      headers,
      signal: controller.signal,
      cache: "no-store",
    });
  } catch (_) {
    if (gen !== generation) return;
    if (attempt === 0) addNotice("Connection lost; reconnecting.", "info");
    retryLater("gateway unreachable");
    return;
  }
  if (gen !== generation) return;
  if (!res.ok) {
    const r = refusal(res, await jsonBody(res));
    if (gen !== generation) return;
    if (res.status === 401 || res.status === 403) {
      onToken(r.message);
      return;
    }
    if (res.status === 429 || res.status === 503) {
      if (attempt === 0) addNotice("Refused (" + res.status + "): " + r.message + "; retrying.", "info");
      retryLater(res.status === 429 ? "rate limited" : "gateway busy", retryAfter(res));
      return;
    }
    setConnection("error", r.message);
    addNotice("Refused (" + res.status + "): " + r.message);
    return;
  }
  try {
    await readFrames(res.body, (f) => gen === generation && onFrame(f));
  } catch (_) {
    // The stream broke (network, or our own abort).
  }
  if (gen !== generation) return;
  if (expired) {
    onToken("The token expired; enter a new one.");
    return;
  }
  if (attempt === 0 && connectionState() === "live") addNotice("Connection lost; reconnecting.", "info");
  retryLater("stream ended");
}

/** "Load older": the page before the oldest line shown. */
export async function loadOlder() {
  if (!olderCursor) return;
  if (lines.length >= view.max) {
    addNotice("This view keeps at most " + view.max + " lines; add &max= to the address for more.", "info");
    return;
  }
  const gen = generation;
  const p = viewQuery();
  p.set("before", olderCursor);
  p.set("limit", String(Math.min(OLDER_PAGE, view.max - lines.length)));
  const { res, body } = await getJSON(API + "history?" + p.toString());
  if (gen !== generation) return;
  if (!res.ok) {
    addNotice("Could not load older lines: " + refusal(res, body).message);
    return;
  }
  prependOlder(body.logs);
  olderCursor = body.prev_cursor;
  $("load-older").hidden = !olderCursor;
}

/** Saves the view's history (newest DOWNLOAD_PAGES pages) as NDJSON. */
export async function download(button) {
  const pages = [];
  let before = "end";
  button.disabled = true;
  try {
    for (let i = 0; i < DOWNLOAD_PAGES && before; i++) {
      const p = viewQuery();
      p.set("before", before);
      p.set("limit", String(DOWNLOAD_PAGE));
      const { res, body } = await getJSON(API + "history?" + p.toString());
      if (!res.ok) {
        addNotice("Download failed: " + refusal(res, body).message);
        return;
      }
      if (body.logs.length) pages.unshift(body.logs.map((e) => JSON.stringify(e) + "\n").join(""));
      before = body.prev_cursor;
    }
  } catch (_) {
    addNotice("Download failed: the gateway is unreachable.");
    return;
  } finally {
    button.disabled = false;
  }
  const blob = new Blob(pages, { type: "application/x-ndjson" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = "loggate-" + view.channels.replace(/[^A-Za-z0-9_-]+/g, "_") + ".ndjson";
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}
