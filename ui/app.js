// loggate's viewer: recent history, then the live stream, in one list.
//
// Plain modern JavaScript, no build step, no dependencies. The page is
// served by the gateway under ui/; every URL here is relative, so it works
// behind a path prefix. The address bar holds the view (channels, level,
// text, paused, selected line, time zone), so a view is a shareable link.
//
// The stream is read with fetch() rather than EventSource: the token
// travels in an Authorization header (not the URL), the status of a refused
// connection is visible (EventSource gives up silently on 401/429/503), and
// the page decides when and how to reconnect, resuming from the last id.
"use strict";

const API = "../api/logs/";
const LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"];
const TOKEN_KEY = "loggate_token";
const ADMIN_KEY = "loggate_admin_token";
const HISTORY_LINES = 500;        // shown from history before going live
const OLDER_PAGE = 200;           // lines per "Load older"
const DOWNLOAD_PAGES = 10;        // pages of 1,000 lines at most per download
const BACKOFF_MAX_MS = 30000;
const RATE_WINDOW_MS = 5000;

const $ = (id) => document.getElementById(id);
/** Segments of a channel up to and including each id field. */
const CHANNEL_DEPTH = { service: 2, workspace_id: 3, resource_id: 4 };

// ---------------------------------------------------------------- view state

/** The view as the address bar describes it. */
function readView() {
  const p = new URLSearchParams(location.search);
  const token = p.get("token");
  if (token) {
    // Taken once: kept in this tab, and out of the address bar (and so out
    // of history, bookmarks and Referer headers).
    sessionStorage.setItem(TOKEN_KEY, token);
    p.delete("token");
    const rest = p.toString();
    history.replaceState(null, "", location.pathname + (rest ? "?" + rest : "") + location.hash);
  }
  const max = parseInt(p.get("max") || "", 10);
  return {
    channels: (p.get("channels") || "logs:*").trim(),
    level: LEVELS.includes(p.get("level")) ? p.get("level") : "",
    q: p.get("q") || "",
    paused: p.get("paused") === "1",
    sel: p.get("sel") || "",
    utc: p.get("utc") === "1",
    max: Number.isFinite(max) && max >= 100 ? Math.min(max, 100000) : 5000,
  };
}

/** Writes the view back to the address bar. */
function writeView(push) {
  const p = new URLSearchParams();
  p.set("channels", view.channels);
  if (view.level) p.set("level", view.level);
  if (view.q) p.set("q", view.q);
  if (view.paused) p.set("paused", "1");
  if (view.sel) p.set("sel", view.sel);
  if (view.utc) p.set("utc", "1");
  if (view.max !== 5000) p.set("max", String(view.max));
  const url = location.pathname + "?" + p.toString();
  if (push) history.pushState(null, "", url);
  else history.replaceState(null, "", url);
}

let view = readView();

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

function authHeaders(extra) {
  const h = Object.assign({}, extra || {});
  const t = token();
  if (t) h.Authorization = "Bearer " + t;
  return h;
}

/** The query a stream or a history page of this view carries. */
function viewQuery() {
  const p = new URLSearchParams();
  p.set("channels", view.channels);
  if (view.level) p.set("level", view.level);
  if (view.q) p.set("q", view.q);
  return p;
}

// ------------------------------------------------------------------ the list

const list = $("list");
const scroller = $("scroller");
/** Lines in the list, oldest first: { id, event, el }. */
const lines = [];
/** Events that arrived while paused, waiting to be shown. */
let waiting = [];
/** Events that arrived since the last animation frame. */
let incoming = [];
let frameAsked = false;
/** The cursor to page further back from, or null. */
let olderCursor = null;
let lastId = "";
const arrivals = [];

function setStatus(word, detail) {
  const s = $("status");
  s.textContent = detail ? word + " · " + detail : word;
  s.className = "status " + word;
}

function currentStatus() {
  return $("status").className.replace("status ", "");
}

function timeText(ts) {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return ts || "";
  if (view.utc) return d.toISOString().replace("T", " ").replace("Z", "").slice(0, 23);
  const pad = (n, w) => String(n).padStart(w || 2, "0");
  return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
    pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + "." +
    pad(d.getMilliseconds(), 3);
}

/** `text` with every case-insensitive occurrence of the search marked. */
function highlighted(text) {
  const frag = document.createDocumentFragment();
  const q = view.q.toLowerCase();
  if (!q) {
    frag.append(text);
    return frag;
  }
  const lower = text.toLowerCase();
  let at = 0;
  for (;;) {
    const i = lower.indexOf(q, at);
    if (i < 0 || q.length === 0) break;
    frag.append(text.slice(at, i));
    const m = document.createElement("mark");
    m.textContent = text.slice(i, i + q.length);
    frag.append(m);
    at = i + q.length;
  }
  frag.append(text.slice(at));
  return frag;
}

function lineElement(e) {
  const li = document.createElement("li");
  const level = LEVELS.includes(e.level) ? e.level : "info";
  li.className = "level-" + level;
  li.dataset.testid = "log-line";
  li.dataset.id = e.id;
  li.dataset.level = level;
  li.dataset.channel = e.channel;
  const time = document.createElement("span");
  time.className = "time";
  time.textContent = timeText(e.timestamp);
  time.title = e.timestamp;
  const lv = document.createElement("span");
  lv.className = "level";
  lv.textContent = level;
  const ch = document.createElement("span");
  ch.className = "channel";
  ch.textContent = e.channel;
  ch.title = e.channel;
  const msg = document.createElement("span");
  msg.className = "message";
  msg.append(highlighted(String(e.message)));
  li.append(time, lv, ch, msg);
  return li;
}

/** A notice (lag, gap, reconnect) in the list, where it happened. */
function notice(text, kind) {
  const li = document.createElement("li");
  li.className = "notice" + (kind ? " " + kind : "");
  li.dataset.testid = "notice";
  li.dataset.kind = kind || "warn";
  li.textContent = text;
  if (view.paused) {
    waiting.push({ notice: li });
  } else {
    incoming.push({ notice: li });
    askFrame();
  }
}

function atBottom() {
  return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
}

function scrollToBottom() {
  scroller.scrollTop = scroller.scrollHeight;
}

/** Keeps at most `view.max` lines: the oldest go first. */
function trim() {
  let over = lines.length - view.max;
  while (over-- > 0) {
    const gone = lines.shift();
    gone.el.remove();
  }
  // Notices are not lines; keep them from piling up at the top.
  while (list.firstElementChild && list.firstElementChild.classList.contains("notice") &&
    list.childElementCount > view.max) {
    list.firstElementChild.remove();
  }
}

function askFrame() {
  if (!frameAsked) {
    frameAsked = true;
    requestAnimationFrame(flush);
  }
}

/** Renders what arrived since the last frame, in one DOM update. */
function flush() {
  frameAsked = false;
  if (incoming.length === 0) return;
  const batch = incoming.length > view.max ? incoming.slice(-view.max) : incoming;
  incoming = [];
  const frag = document.createDocumentFragment();
  for (const item of batch) {
    if (item.notice) {
      frag.append(item.notice);
      continue;
    }
    const el = lineElement(item.event);
    lines.push({ id: item.event.id, event: item.event, el });
    frag.append(el);
  }
  list.append(frag);
  trim();
  if (!view.paused) scrollToBottom();
}

function addEvent(e) {
  lastId = e.id;
  arrivals.push(performance.now());
  if (view.paused) {
    waiting.push({ event: e });
    // Paused keeps buffering, within the same bound as the list.
    if (waiting.length > view.max) waiting.splice(0, waiting.length - view.max);
    $("new-count").textContent = String(waiting.length);
    return;
  }
  incoming.push({ event: e });
  askFrame();
}

function clearList() {
  lines.length = 0;
  waiting = [];
  incoming = [];
  list.replaceChildren();
  $("new-count").textContent = "0";
}

// -------------------------------------------------------------- pause, live

function setPaused(paused) {
  if (view.paused === paused) return;
  view.paused = paused;
  writeView(false);
  $("pause").classList.toggle("on", paused);
  $("pause").textContent = paused ? "Resume" : "Pause";
  $("paused-bar").hidden = !paused;
  if (paused) {
    if (currentStatus() === "live") setStatus("paused");
  } else {
    incoming = incoming.concat(waiting);
    waiting = [];
    $("new-count").textContent = "0";
    if (currentStatus() === "paused") setStatus("live");
    flush();
    scrollToBottom();
  }
}

let programmaticScroll = false;
scroller.addEventListener("scroll", () => {
  if (programmaticScroll) return;
  if (!atBottom() && !view.paused && lines.length > 0) setPaused(true);
  else if (atBottom() && view.paused && waiting.length === 0) setPaused(false);
});
$("pause").addEventListener("click", () => setPaused(!view.paused));
$("live").addEventListener("click", () => setPaused(false));

// ------------------------------------------------------------------ details

function jsonNode(value, indent) {
  const frag = document.createDocumentFragment();
  const pad = "  ".repeat(indent);
  if (value !== null && typeof value === "object") {
    const isArray = Array.isArray(value);
    const entries = isArray ? value.map((v, i) => [i, v]) : Object.entries(value);
    frag.append(isArray ? "[" : "{");
    entries.forEach(([k, v], i) => {
      frag.append("\n" + pad + "  ");
      if (!isArray) {
        const key = document.createElement("span");
        key.className = "k";
        key.textContent = JSON.stringify(k);
        frag.append(key, ": ");
      }
      frag.append(jsonNode(v, indent + 1));
      if (i < entries.length - 1) frag.append(",");
    });
    frag.append((entries.length ? "\n" + pad : "") + (isArray ? "]" : "}"));
    return frag;
  }
  const v = document.createElement("span");
  v.className = "v " + (typeof value === "string" ? "s" : typeof value === "number" ? "n" : "b");
  v.textContent = JSON.stringify(value);
  v.dataset.value = typeof value === "string" ? value : JSON.stringify(value);
  frag.append(v);
  return frag;
}

let selected = null;

function showDetail(line) {
  if (selected) selected.el.classList.remove("selected");
  selected = line;
  line.el.classList.add("selected");
  const pre = $("detail-json");
  pre.replaceChildren(jsonNode(line.event, 0));
  pre.querySelectorAll(".k").forEach((k) => {
    // The key a value belongs to decides which filter it sets.
    const v = k.nextSibling && k.nextSibling.nextSibling;
    if (v && v.classList && v.classList.contains("v")) v.dataset.key = JSON.parse(k.textContent);
  });
  $("detail").hidden = false;
  view.sel = line.id;
  writeView(false);
}

function hideDetail() {
  if (selected) selected.el.classList.remove("selected");
  selected = null;
  $("detail").hidden = true;
  view.sel = "";
  writeView(false);
}

list.addEventListener("click", (ev) => {
  const li = ev.target.closest("li[data-testid=log-line]");
  if (!li) return;
  const line = lines.find((l) => l.el === li);
  if (line) showDetail(line);
});
$("detail-close").addEventListener("click", hideDetail);

$("detail-json").addEventListener("click", (ev) => {
  const v = ev.target.closest(".v");
  if (!v) return;
  const key = v.dataset.key;
  const value = v.dataset.value;
  if (key === "level" && LEVELS.includes(value)) view.level = value;
  else if (key === "channel") view.channels = value;
  else if (key in CHANNEL_DEPTH && selected) {
    // A service, workspace or resource narrows to that part of the channel.
    view.channels = selected.event.channel.split(":").slice(0, CHANNEL_DEPTH[key]).join(":");
  } else view.q = value.slice(0, 256);
  applyView(true);
});

function copy(text, button) {
  const done = () => {
    const was = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => (button.textContent = was), 1200);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, () => {});
  } else {
    const t = document.createElement("textarea");
    t.value = text;
    document.body.append(t);
    t.select();
    document.execCommand("copy");
    t.remove();
    done();
  }
}
$("copy-json").addEventListener("click", (ev) =>
  selected && copy(JSON.stringify(selected.event, null, 2), ev.currentTarget));
$("copy-message").addEventListener("click", (ev) =>
  selected && copy(String(selected.event.message), ev.currentTarget));
$("copy-link").addEventListener("click", (ev) => copy(location.href, ev.currentTarget));

// ------------------------------------------------------------------ history

async function getJSON(url, headers) {
  const res = await fetch(url, { headers: authHeaders(headers), cache: "no-store" });
  let body = null;
  try {
    body = await res.json();
  } catch (_) {
    body = null;
  }
  return { res, body };
}

function refusal(res, body) {
  const msg = body && body.error ? body.error.message : res.statusText;
  return { status: res.status, message: msg || "HTTP " + res.status };
}

/** The newest lines of this view; where the stream resumes from. */
async function loadHistory() {
  const p = viewQuery();
  p.set("before", "end");
  p.set("limit", String(Math.min(HISTORY_LINES, view.max, 1000)));
  const { res, body } = await getJSON(API + "history?" + p.toString());
  if (!res.ok) throw refusal(res, body);
  // History is shown even when the view opens paused; only live lines wait.
  for (const e of body.logs) incoming.push({ event: e });
  if (body.logs.length) lastId = body.logs[body.logs.length - 1].id;
  olderCursor = body.prev_cursor;
  $("load-older").hidden = !olderCursor;
  // Resume after the newest of: the page's last line, and the newest
  // event the gateway had accepted when it read the page.
  const newest = [lastId, body.last_id || ""].sort().pop();
  lastId = newest;
}

$("load-older").addEventListener("click", async () => {
  if (!olderCursor) return;
  if (lines.length >= view.max) {
    notice("Showing the most lines this view keeps (" + view.max + "); add &max= to the address for more.", "info");
    return;
  }
  const p = viewQuery();
  p.set("before", olderCursor);
  p.set("limit", String(Math.min(OLDER_PAGE, view.max - lines.length)));
  const { res, body } = await getJSON(API + "history?" + p.toString());
  if (!res.ok) {
    notice("Could not load older lines: " + refusal(res, body).message);
    return;
  }
  const height = scroller.scrollHeight;
  const frag = document.createDocumentFragment();
  const older = body.logs.map((e) => ({ id: e.id, event: e, el: lineElement(e) }));
  for (const l of older) frag.append(l.el);
  list.prepend(frag);
  lines.unshift(...older);
  olderCursor = body.prev_cursor;
  $("load-older").hidden = !olderCursor;
  // Keep what was on screen where it was.
  programmaticScroll = true;
  scroller.scrollTop += scroller.scrollHeight - height;
  requestAnimationFrame(() => (programmaticScroll = false));
});

$("download").addEventListener("click", async () => {
  const pages = [];
  let before = "end";
  for (let i = 0; i < DOWNLOAD_PAGES && before; i++) {
    const p = viewQuery();
    p.set("before", before);
    p.set("limit", "1000");
    const { res, body } = await getJSON(API + "history?" + p.toString());
    if (!res.ok) {
      notice("Download failed: " + refusal(res, body).message);
      return;
    }
    pages.unshift(body.logs.map((e) => JSON.stringify(e)).join("\n"));
    before = body.prev_cursor;
  }
  const text = pages.filter((p) => p).join("\n");
  const blob = new Blob([text ? text + "\n" : ""], { type: "application/x-ndjson" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = "loggate-" + view.channels.replace(/[^A-Za-z0-9_-]+/g, "_") + ".ndjson";
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
});

// ------------------------------------------------------------------- stream

let controller = null;
let generation = 0;
let attempt = 0;
let retryTimer = null;

/** Reads an SSE body and hands each frame to `onFrame`. */
async function readFrames(body, onFrame) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true });
    let end;
    while ((end = buf.search(/\r?\n\r?\n/)) >= 0) {
      const raw = buf.slice(0, end);
      buf = buf.slice(end).replace(/^\r?\n\r?\n/, "");
      const frame = { event: "message", data: "", id: null };
      const data = [];
      for (const line of raw.split(/\r?\n/)) {
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
    unknown_epoch: "the gateway restarted; its earlier lines are gone",
  }[g.reason] || g.reason;
  const lost = g.lost != null ? g.lost + " line(s) missing" : "some lines may be missing";
  return "Gap: " + lost + " (" + why + ")" + (g.resumed_from ? ", resumed from " + g.resumed_from : "") + ".";
}

function onFrame(f, gen) {
  if (gen !== generation) return;
  let data = null;
  try {
    data = f.data ? JSON.parse(f.data) : null;
  } catch (_) {
    data = null;
  }
  switch (f.event) {
    case "ready":
      if (attempt > 0) notice("Reconnected.", "info");
      attempt = 0;
      setStatus(view.paused ? "paused" : "live");
      break;
    case "log":
      if (data) addEvent(data);
      break;
    case "lag":
      notice("Lag: " + (data ? data.dropped : "some") + " line(s) dropped: this view could not keep up.");
      break;
    case "gap":
      if (data) notice(describeGap(data));
      break;
    case "shutdown":
      notice("The gateway is restarting; reconnecting.", "info");
      break;
    case "expired":
      expired = true;
      break;
    default:
      break;
  }
}

let expired = false;

function retryLater(reason, afterMs) {
  const backoff = Math.min(BACKOFF_MAX_MS, 500 * 2 ** Math.min(attempt, 6));
  const wait = afterMs != null ? afterMs : backoff / 2 + Math.random() * backoff / 2;
  attempt += 1;
  setStatus("reconnecting", reason);
  clearTimeout(retryTimer);
  retryTimer = setTimeout(connect, wait);
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
  } catch (e) {
    if (gen !== generation) return;
    if (attempt === 0) notice("Connection lost; reconnecting.", "info");
    retryLater("gateway unreachable");
    return;
  }
  if (gen !== generation) return;
  if (!res.ok) {
    let body = null;
    try {
      body = await res.json();
    } catch (_) {
      body = null;
    }
    const r = refusal(res, body);
    if (res.status === 401) return askForToken(r.message);
    if (res.status === 429 || res.status === 503) {
      const after = parseInt(res.headers.get("Retry-After") || "", 10);
      notice("Refused (" + res.status + "): " + r.message + "; retrying.", "info");
      return retryLater(res.status === 429 ? "rate limited" : "gateway busy", Number.isFinite(after) ? after * 1000 : null);
    }
    setStatus("error", r.message);
    notice("Refused (" + res.status + "): " + r.message);
    return;
  }
  try {
    await readFrames(res.body, (f) => onFrame(f, gen));
  } catch (_) {
    // The stream broke (network, or our own abort).
  }
  if (gen !== generation) return;
  if (expired) return askForToken("The token expired; enter a new one.");
  if (attempt === 0) notice("Connection lost; reconnecting.", "info");
  retryLater("stream ended");
}

// -------------------------------------------------------------------- token

function askForToken(why) {
  setStatus("error", "token needed");
  $("token-why").textContent = why;
  $("token-form").hidden = false;
  $("token-input").focus();
}

$("token-entry").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const t = $("token-input").value.trim();
  if (!t) return;
  sessionStorage.setItem(TOKEN_KEY, t);
  $("token-input").value = "";
  $("token-form").hidden = true;
  start();
});

// ------------------------------------------------------------------ filters

function fillForm() {
  $("f-channels").value = view.channels;
  $("f-level").value = view.level;
  $("f-q").value = view.q;
  $("time-zone").textContent = view.utc ? "UTC" : "Local";
  $("pause").classList.toggle("on", view.paused);
  $("pause").textContent = view.paused ? "Resume" : "Pause";
  $("paused-bar").hidden = !view.paused;
}

function applyView(push) {
  writeView(push);
  fillForm();
  start();
}

$("filters").addEventListener("submit", (ev) => {
  ev.preventDefault();
  view.channels = $("f-channels").value.trim() || "logs:*";
  view.level = $("f-level").value;
  view.q = $("f-q").value;
  view.sel = "";
  applyView(true);
});

$("time-zone").addEventListener("click", () => {
  view.utc = !view.utc;
  writeView(false);
  fillForm();
  for (const l of lines) l.el.querySelector(".time").textContent = timeText(l.event.timestamp);
});

window.addEventListener("popstate", () => {
  view = readView();
  fillForm();
  start();
});

// --------------------------------------------------------------------- rate

setInterval(() => {
  const now = performance.now();
  while (arrivals.length && now - arrivals[0] > RATE_WINDOW_MS) arrivals.shift();
  const rate = arrivals.length / (RATE_WINDOW_MS / 1000);
  $("rate").textContent = (rate < 10 ? rate.toFixed(1) : Math.round(rate)) + " lines/s";
}, 1000);

// -------------------------------------------------------------------- admin

let adminTimer = null;

function cell(row, text, num) {
  const td = document.createElement("td");
  td.textContent = String(text);
  if (num) td.className = "num";
  row.append(td);
}

function table(caption, head, rows) {
  const t = document.createElement("table");
  const c = document.createElement("caption");
  c.textContent = caption;
  const tr = document.createElement("tr");
  for (const h of head) {
    const th = document.createElement("th");
    th.textContent = h;
    tr.append(th);
  }
  t.append(c, tr);
  for (const r of rows) {
    const row = document.createElement("tr");
    r.forEach((v, i) => cell(row, v, i > 0));
    t.append(row);
  }
  return t;
}

async function pollAdmin() {
  const t = sessionStorage.getItem(ADMIN_KEY) || "";
  if (!t) {
    $("admin-entry").hidden = false;
    return;
  }
  const res = await fetch("../admin/logs/stats", {
    headers: { Authorization: "Bearer " + t },
    cache: "no-store",
  }).catch(() => null);
  if (!res) return;
  if (!res.ok) {
    let body = null;
    try {
      body = await res.json();
    } catch (_) {
      body = null;
    }
    $("admin-why").textContent = refusal(res, body).message;
    $("admin-entry").hidden = false;
    clearInterval(adminTimer);
    return;
  }
  const s = await res.json();
  $("admin-entry").hidden = true;
  const body = $("admin-body");
  const services = Object.entries(s.services || {}).map(([name, v]) => [name, v.published, v.delivered, v.dropped]);
  body.replaceChildren(
    table("Connections", ["transport", "open"], [
      ["sse", s.connections.sse],
      ["websocket", s.connections.websocket],
      ["total", s.connections.total],
    ]),
    table("Busiest channels", ["channel", "subscribers"], (s.channels || []).slice(0, 15).map((c) => [c.channel, c.subscribers])),
    table("Services", ["service", "published", "delivered", "dropped"], services),
    table("Gateway", ["", ""], [
      ["uptime (s)", s.uptime_seconds],
      ["events accepted", s.events_accepted],
      ["history events", s.history.events],
      ["NATS", s.nats.state],
    ]),
  );
}

function openAdmin() {
  $("admin").hidden = false;
  pollAdmin();
  clearInterval(adminTimer);
  adminTimer = setInterval(pollAdmin, 2000);
}

$("admin-open").addEventListener("click", () => {
  if ($("admin").hidden) openAdmin();
  else $("admin-close").click();
});
$("admin-close").addEventListener("click", () => {
  $("admin").hidden = true;
  clearInterval(adminTimer);
});
$("admin-entry").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const t = $("admin-input").value.trim();
  if (!t) return;
  sessionStorage.setItem(ADMIN_KEY, t);
  $("admin-input").value = "";
  $("admin-why").textContent = "";
  openAdmin();
});

// -------------------------------------------------------------------- start

/** (Re)starts the view: history, then the live stream from where it ends. */
async function start() {
  generation++;
  if (controller) controller.abort();
  clearTimeout(retryTimer);
  attempt = 0;
  lastId = "";
  olderCursor = null;
  clearList();
  hideDetailQuietly();
  setStatus("connecting");
  const wanted = view.sel;
  try {
    await loadHistory();
  } catch (r) {
    if (r && r.status === 401) return askForToken(r.message);
    setStatus("error", r && r.message ? r.message : "history unavailable");
    notice("History: " + (r && r.message ? r.message : "unavailable"));
    if (!(r && r.status)) retryLater("gateway unreachable");
    return;
  }
  flush();
  scrollToBottom();
  if (wanted) {
    const line = lines.find((l) => l.id === wanted);
    if (line) {
      showDetail(line);
      line.el.scrollIntoView({ block: "center" });
    }
  }
  connect();
}

function hideDetailQuietly() {
  selected = null;
  $("detail").hidden = true;
}

if (location.hash === "#admin") openAdmin();
fillForm();
writeView(false);
start();
