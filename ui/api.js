// @ts-check
// Every request the viewer makes to the gateway, with relative URLs (the
// page works behind a path prefix) and the tab's token in an
// Authorization header (never in a URL). Each answers either the body or
// the refusal: its status, the error body's code and message, and its
// `Retry-After`. A gateway that cannot be reached rejects, as fetch does;
// what to do then is the caller's.

import { token } from "./tab.js";
import { viewQuery } from "./view.js";

/** @typedef {import("./view.js").View} View */

/**
 * An event as the gateway sends it (history pages and the stream).
 * @typedef {{ id: string, timestamp: string, level: string, channel: string, message: unknown } & Record<string, unknown>} LogEvent
 */

/**
 * A history page, oldest first.
 * @typedef {object} HistoryPage
 * @property {LogEvent[]} logs
 * @property {string | null} prev_cursor where the page before it begins, null at the oldest
 * @property {string | null} [last_id] the newest event accepted when the page was read
 */

/**
 * A channel the tab's token may read (`GET /api/logs/channels`).
 * @typedef {{ channel: string, events: number, newest?: string | null, subscribers?: number }} ChannelInfo
 */

/**
 * @typedef {object} Refusal
 * @property {number} status
 * @property {string} code the error body's code, "" without one
 * @property {string} message the error body's message, or the status's
 * @property {string} retryAfter the `Retry-After` header, "" without one
 */

/**
 * @template T
 * @typedef {{ ok: true, body: T } | { ok: false, refusal: Refusal }} Answer
 */

const LOGS = "../api/logs/";
const ADMIN_STATS = "../admin/logs/stats";

/**
 * Request headers with this tab's subscriber token, if it has one.
 * @param {Record<string, string>} [extra]
 * @returns {Record<string, string>}
 */
function authHeaders(extra) {
  const h = Object.assign({}, extra || {});
  const t = token();
  if (t) h.Authorization = "Bearer " + t;
  return h;
}

/**
 * The JSON body of `res`, or null when it has none.
 * @param {Response} res
 * @returns {Promise<any>}
 */
async function jsonBody(res) {
  try {
    return await res.json();
  } catch (_) {
    return null;
  }
}

/**
 * @param {Response} res
 * @param {any} body its JSON, if any
 * @returns {Refusal}
 */
function refusal(res, body) {
  const error = body && body.error;
  const message = error ? error.message : res.statusText;
  return {
    status: res.status,
    code: (error && typeof error.code === "string" && error.code) || "",
    message: message || "HTTP " + res.status,
    retryAfter: res.headers.get("Retry-After") || "",
  };
}

/**
 * The wait a refusal asks for, in milliseconds; null when it names none.
 * @param {Refusal} r
 * @returns {number | null}
 */
export function retryAfterMs(r) {
  const s = parseInt(r.retryAfter, 10);
  return Number.isFinite(s) ? s * 1000 : null;
}

/**
 * Whether a refusal is about the token (none, a bad one, or one that does
 * not cover what was asked).
 * @param {Refusal} r
 */
export function needsToken(r) {
  return r.status === 401 || r.status === 403;
}

/**
 * Whether a refusal passes: the gateway is rate limiting or busy.
 * @param {Refusal} r
 */
export function isTransient(r) {
  return r.status === 429 || r.status === 503;
}

/**
 * A JSON GET.
 * @param {string} url
 * @param {Record<string, string>} headers
 * @returns {Promise<Answer<any>>}
 */
async function getJSON(url, headers) {
  const res = await fetch(url, { headers, cache: "no-store" });
  const body = await jsonBody(res);
  return res.ok ? { ok: true, body } : { ok: false, refusal: refusal(res, body) };
}

/**
 * A response whose body is an event stream.
 * @param {Response} res
 * @returns {Promise<Answer<ReadableStream<Uint8Array> | null>>}
 */
async function streamed(res) {
  if (!res.ok) return { ok: false, refusal: refusal(res, await jsonBody(res)) };
  return { ok: true, body: res.body };
}

/**
 * The page of `view`'s history that ends before `before` ("end": the
 * newest), at most `limit` lines.
 * @param {View} view
 * @param {string} before
 * @param {number} limit
 * @returns {Promise<Answer<HistoryPage>>}
 */
export function historyPage(view, before, limit) {
  const p = viewQuery(view);
  p.set("before", before);
  p.set("limit", String(limit));
  return getJSON(LOGS + "history?" + p.toString(), authHeaders());
}

/**
 * `view`'s live stream, resumed after `lastId` when there is one.
 * @param {View} view
 * @param {string} lastId
 * @param {AbortSignal} signal
 * @returns {Promise<Answer<ReadableStream<Uint8Array> | null>>}
 */
export async function liveStream(view, lastId, signal) {
  const headers = authHeaders({ Accept: "text/event-stream" });
  if (lastId) headers["Last-Event-ID"] = lastId;
  const res = await fetch(LOGS + "stream?" + viewQuery(view).toString(), {
    headers,
    signal,
    cache: "no-store",
  });
  return streamed(res);
}

/**
 * A question about `channels`; the answer streams as events.
 * @param {string} message
 * @param {string[]} channels
 * @param {AbortSignal} signal
 * @returns {Promise<Answer<ReadableStream<Uint8Array> | null>>}
 */
export async function chat(message, channels, signal) {
  const res = await fetch(LOGS + "chat", {
    method: "POST",
    headers: authHeaders({ "Content-Type": "application/json", Accept: "text/event-stream" }),
    body: JSON.stringify({ message, channels }),
    cache: "no-store",
    signal,
  });
  return streamed(res);
}

/**
 * The channels the query (`limit`, `cursor`) lists.
 * @param {string} query
 * @returns {Promise<Answer<{ channels: ChannelInfo[] }>>}
 */
export function channelPage(query) {
  return getJSON(LOGS + "channels?" + query, authHeaders());
}

/**
 * The gateway's state, for an admin token.
 * @param {string} adminToken
 * @returns {Promise<Answer<any>>}
 */
export function adminStats(adminToken) {
  return getJSON(ADMIN_STATS, { Authorization: "Bearer " + adminToken });
}
