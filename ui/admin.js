// @ts-check
// The gateway panel (admin token): connections, the busiest channels and
// per-service counters with their rates, from `/admin/logs/stats`, every
// two seconds while the panel is open.
//
// Polled over HTTP rather than read from the `/metrics/ws` WebSocket: a
// browser cannot put an Authorization header on a WebSocket, and an admin
// token in a URL would end up in logs; `/admin/logs/stats` also carries
// the per-channel and per-service figures the snapshot lacks.

import { adminStats } from "./api.js";
import { $, $as, el } from "./dom.js";
import { adminToken, setAdminToken } from "./tab.js";

const POLL_MS = 2000;
const TOP_CHANNELS = 15;

/**
 * @param {string} caption
 * @param {string[]} head
 * @param {unknown[][]} rows
 * @param {string} testid
 */
function table(caption, head, rows, testid) {
  const t = el("table");
  t.dataset.testid = testid;
  const tr = el("tr");
  for (const h of head) tr.append(el("th", null, h));
  t.append(el("caption", null, caption), tr);
  for (const r of rows) {
    const row = el("tr");
    r.forEach((v, i) => row.append(el("td", i > 0 ? "num" : null, String(v))));
    t.append(row);
  }
  return t;
}

/**
 * @param {number} now a counter now
 * @param {number | undefined} before the counter `seconds` ago
 * @param {number} seconds
 */
function perSecond(now, before, seconds) {
  if (before == null || seconds <= 0) return "–";
  const r = Math.max(0, now - before) / seconds;
  return r < 10 ? r.toFixed(1) : String(Math.round(r));
}

/**
 * The panel's tables.
 * @param {any} s the gateway's stats
 * @param {{ at: number, stats: any } | null} previous the stats before, and when they came
 */
function tables(s, previous) {
  const now = performance.now();
  const seconds = previous ? (now - previous.at) / 1000 : 0;
  const was = (previous && previous.stats.services) || {};
  const services = Object.entries(s.services || {}).map(([name, /** @type {any} */ v]) => [
    name,
    v.published,
    perSecond(v.published, was[name] && was[name].published, seconds),
    v.delivered,
    perSecond(v.delivered, was[name] && was[name].delivered, seconds),
    v.dropped,
  ]);
  const links = Object.entries((s.nats && s.nats.links) || {}).map(([name, /** @type {any} */ l]) => ["NATS " + name, l.state || (l.connected ? "connected" : "down")]);
  return [
    table("Connections", ["transport", "open"], [
      ["SSE", s.connections.sse],
      ["WebSocket", s.connections.websocket],
      ["total", s.connections.total],
    ], "admin-connections"),
    table("Busiest channels", ["channel", "subscribers"],
      (s.channels || []).slice(0, TOP_CHANNELS).map((/** @type {any} */ c) => [c.channel, c.subscribers]), "admin-channels"),
    table("Services", ["service", "published", "/s", "delivered", "/s", "dropped"], services, "admin-services"),
    table("Gateway", ["", ""], [
      ["uptime (s)", s.uptime_seconds],
      ["events accepted", s.events_accepted],
      ["in history", s.history.events],
      ["NATS", (s.nats && s.nats.state) || "disabled"],
      ...links,
    ], "admin-gateway"),
  ];
}

export class AdminPanel {
  constructor() {
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.timer = undefined;
    /** The previous answer and when it came, for rates. @type {{ at: number, stats: any } | null} */
    this.previous = null;
  }

  async poll() {
    const t = adminToken();
    if (!t) {
      $("admin-entry").hidden = false;
      $("admin-input").focus();
      return;
    }
    let answer;
    try {
      answer = await adminStats(t);
    } catch (_) {
      $("admin-why").textContent = "The gateway is unreachable.";
      return;
    }
    if (!answer.ok) {
      $("admin-why").textContent = answer.refusal.message;
      $("admin-entry").hidden = false;
      this.stopPolling();
      return;
    }
    $("admin-why").textContent = "";
    $("admin-entry").hidden = true;
    if (answer.body) {
      $("admin-body").replaceChildren(...tables(answer.body, this.previous));
      this.previous = { at: performance.now(), stats: answer.body };
    }
  }

  stopPolling() {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  open() {
    $("admin").hidden = false;
    $("admin-open").classList.add("on");
    this.previous = null;
    this.stopPolling();
    this.poll();
    this.timer = setInterval(() => this.poll(), POLL_MS);
  }

  close() {
    $("admin").hidden = true;
    $("admin-open").classList.remove("on");
    this.stopPolling();
  }

  setup() {
    $("admin-open").addEventListener("click", () => ($("admin").hidden ? this.open() : this.close()));
    $("admin-close").addEventListener("click", () => this.close());
    $("admin-entry").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const input = $as("admin-input", HTMLInputElement);
      const t = input.value.trim();
      if (!t) return;
      setAdminToken(t);
      input.value = "";
      this.open();
    });
    if (location.hash === "#admin") this.open();
  }
}
