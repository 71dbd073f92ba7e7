// The gateway panel (admin token): connections, the busiest channels and
// per-service counters with their rates, from `/admin/logs/stats`, every
// two seconds while the panel is open.
//
// Polled over HTTP rather than read from the `/metrics/ws` WebSocket: a
// browser cannot put an Authorization header on a WebSocket, and an admin
// token in a URL would end up in logs; `/admin/logs/stats` also carries
// the per-channel and per-service figures the snapshot lacks.

import { adminToken, jsonBody, refusal, setAdminToken } from "./view.js";

const POLL_MS = 2000;
const TOP_CHANNELS = 15;

const $ = (id) => document.getElementById(id);

let timer = null;
/** The previous answer and when it came, for rates. */
let previous = null;

function table(caption, head, rows, testid) {
  const t = document.createElement("table");
  t.dataset.testid = testid;
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
    r.forEach((v, i) => {
      const td = document.createElement("td");
      td.textContent = String(v);
      if (i > 0) td.className = "num";
      row.append(td);
    });
    t.append(row);
  }
  return t;
}

function perSecond(now, before, seconds) {
  if (before == null || seconds <= 0) return "–";
  const r = Math.max(0, now - before) / seconds;
  return r < 10 ? r.toFixed(1) : String(Math.round(r));
}

function show(s) {
  const now = performance.now();
  const seconds = previous ? (now - previous.at) / 1000 : 0;
  const was = (previous && previous.stats.services) || {};
  const services = Object.entries(s.services || {}).map(([name, v]) => [
    name,
    v.published,
    perSecond(v.published, was[name] && was[name].published, seconds),
    v.delivered,
    perSecond(v.delivered, was[name] && was[name].delivered, seconds),
    v.dropped,
  ]);
  const links = Object.entries((s.nats && s.nats.links) || {}).map(([name, l]) => ["NATS " + name, l.state || (l.connected ? "connected" : "down")]);
  $("admin-body").replaceChildren(
    table("Connections", ["transport", "open"], [
      ["SSE", s.connections.sse],
      ["WebSocket", s.connections.websocket],
      ["total", s.connections.total],
    ], "admin-connections"),
    table("Busiest channels", ["channel", "subscribers"],
      (s.channels || []).slice(0, TOP_CHANNELS).map((c) => [c.channel, c.subscribers]), "admin-channels"),
    table("Services", ["service", "published", "/s", "delivered", "/s", "dropped"], services, "admin-services"),
    table("Gateway", ["", ""], [
      ["uptime (s)", s.uptime_seconds],
      ["events accepted", s.events_accepted],
      ["in history", s.history.events],
      ["NATS", (s.nats && s.nats.state) || "disabled"],
      ...links,
    ], "admin-gateway"),
  );
  previous = { at: now, stats: s };
}

async function poll() {
  const t = adminToken();
  if (!t) {
    $("admin-entry").hidden = false;
    $("admin-input").focus();
    return;
  }
  let res;
  try {
    res = await fetch("../admin/logs/stats", { headers: { Authorization: "Bearer " + t }, cache: "no-store" });
  } catch (_) {
    $("admin-why").textContent = "The gateway is unreachable.";
    return;
  }
  const body = await jsonBody(res);
  if (!res.ok) {
    $("admin-why").textContent = refusal(res, body).message;
    $("admin-entry").hidden = false;
    stopPolling();
    return;
  }
  $("admin-why").textContent = "";
  $("admin-entry").hidden = true;
  if (body) show(body);
}

function stopPolling() {
  clearInterval(timer);
  timer = null;
}

function open() {
  $("admin").hidden = false;
  $("admin-open").classList.add("on");
  previous = null;
  stopPolling();
  poll();
  timer = setInterval(poll, POLL_MS);
}

function close() {
  $("admin").hidden = true;
  $("admin-open").classList.remove("on");
  stopPolling();
}

export function setupAdmin() {
  $("admin-open").addEventListener("click", () => ($("admin").hidden ? open() : close()));
  $("admin-close").addEventListener("click", close);
  $("admin-entry").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const t = $("admin-input").value.trim();
    if (!t) return;
    setAdminToken(t);
    $("admin-input").value = "";
    open();
  });
  if (location.hash === "#admin") open();
}
