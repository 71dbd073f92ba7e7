// The gateway's requests and their refusals, with fetch and sessionStorage
// stood in for (no gateway, no browser).

import assert from "node:assert/strict";
import { beforeEach, test } from "node:test";

import { chat, historyPage, isTransient, liveStream, needsToken, retryAfterMs } from "../api.js";
import { defaultView } from "../view.js";

/** @type {{ url: string, init: RequestInit }[]} */
let requests = [];
/** @type {() => Response} */
let answer = () => new Response("{}");
const storage = new Map();

globalThis.sessionStorage = /** @type {any} */ ({
  getItem: (k) => (storage.has(k) ? storage.get(k) : null),
  setItem: (k, v) => storage.set(k, v),
});
globalThis.fetch = async (url, init) => {
  requests.push({ url: String(url), init });
  return answer();
};

beforeEach(() => {
  requests = [];
  storage.clear();
});

const json = (status, body, headers = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });

test("a history page: the view's query, the page, the tab's token", async () => {
  storage.set("loggate_token", "tok");
  answer = () => json(200, { logs: [], prev_cursor: null, last_id: "1-2" });
  const page = await historyPage({ ...defaultView(), channels: "logs:etl", level: "warn" }, "end", 500);
  assert.deepEqual(page, { ok: true, body: { logs: [], prev_cursor: null, last_id: "1-2" } });
  assert.equal(requests[0].url, "../api/logs/history?channels=logs%3Aetl&level=warn&before=end&limit=500");
  assert.equal(requests[0].init.headers.Authorization, "Bearer tok");
});

test("no token, no Authorization header", async () => {
  answer = () => json(200, { logs: [], prev_cursor: null });
  await historyPage(defaultView(), "end", 1);
  assert.equal(requests[0].init.headers.Authorization, undefined);
});

test("a refusal carries the error body's code and message, and Retry-After", async () => {
  answer = () => json(429, { error: { code: "rate_limited", message: "slow down" } }, { "Retry-After": "7" });
  const page = await historyPage(defaultView(), "end", 1);
  assert.deepEqual(page, {
    ok: false,
    refusal: { status: 429, code: "rate_limited", message: "slow down", retryAfter: "7" },
  });
  assert.ok(!page.ok && isTransient(page.refusal) && !needsToken(page.refusal));
  assert.equal(!page.ok && retryAfterMs(page.refusal), 7000);
});

test("a refusal without a JSON body says its status", async () => {
  answer = () => new Response("<html>", { status: 502, statusText: "Bad Gateway" });
  const page = await historyPage(defaultView(), "end", 1);
  assert.deepEqual(page, { ok: false, refusal: { status: 502, code: "", message: "Bad Gateway", retryAfter: "" } });
  answer = () => new Response("", { status: 403 });
  const again = await historyPage(defaultView(), "end", 1);
  assert.ok(!again.ok && again.refusal.message === "HTTP 403" && needsToken(again.refusal));
  assert.equal(!again.ok && retryAfterMs(again.refusal), null);
});

test("the live stream resumes after the last id; its body is handed over", async () => {
  answer = () => new Response("data: x\n\n", { headers: { "Content-Type": "text/event-stream" } });
  const stop = new AbortController();
  const res = await liveStream({ ...defaultView(), q: "a b" }, "1-9", stop.signal);
  assert.ok(res.ok && res.body instanceof ReadableStream);
  const { url, init } = requests[0];
  assert.equal(url, "../api/logs/stream?channels=logs%3A*&q=a+b");
  assert.equal(init.headers["Last-Event-ID"], "1-9");
  assert.equal(init.headers.Accept, "text/event-stream");
  assert.equal(init.signal, stop.signal);
  await liveStream(defaultView(), "", stop.signal);
  assert.equal(requests[1].init.headers["Last-Event-ID"], undefined);
});

test("a chat posts the question and the channels", async () => {
  answer = () => json(503, { error: { code: "ai_disabled", message: "off" } });
  const res = await chat("why?", ["logs:a"], new AbortController().signal);
  assert.deepEqual(res, { ok: false, refusal: { status: 503, code: "ai_disabled", message: "off", retryAfter: "" } });
  assert.equal(requests[0].url, "../api/logs/chat");
  assert.equal(requests[0].init.method, "POST");
  assert.deepEqual(JSON.parse(String(requests[0].init.body)), { message: "why?", channels: ["logs:a"] });
});

test("an unreachable gateway rejects", async () => {
  answer = () => {
    throw new TypeError("fetch failed");
  };
  await assert.rejects(historyPage(defaultView(), "end", 1), TypeError);
});
