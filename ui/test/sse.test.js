// The SSE reader against the WHATWG EventSource parsing rules
// (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation).

import assert from "node:assert/strict";
import { test } from "node:test";

import { readSse, SseParser } from "../sse.js";

/** Events and retries from `pieces` pushed in turn, then the end. */
function parse(...pieces) {
  const events = [];
  const retries = [];
  const p = new SseParser((e) => events.push(e), (ms) => retries.push(ms));
  for (const piece of pieces) p.push(piece);
  p.end();
  return { events, retries };
}

const ev = (type, data, lastEventId = "") => ({ type, data, lastEventId });

/** A body that yields `chunks` (strings are UTF-8 encoded). */
function body(chunks) {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(c) {
      for (const chunk of chunks) c.enqueue(typeof chunk === "string" ? enc.encode(chunk) : chunk);
      c.close();
    },
  });
}

async function read(chunks, options) {
  const events = [];
  await readSse(body(chunks), (e) => events.push(e), options);
  return events;
}

test("a frame's fields: event, id, data; the type defaults to message", () => {
  const { events } = parse("event: log\nid: 7\ndata: {\"a\":1}\n\ndata: plain\n\n");
  assert.deepEqual(events, [ev("log", "{\"a\":1}", "7"), ev("message", "plain", "7")]);
});

test("lines end in \\r\\n, \\n or \\r, mixed in one stream", () => {
  const { events } = parse("data: a\r\n\r\ndata: b\n\ndata: c\r\rdata: d\r\n\ndata: e\n\r");
  assert.deepEqual(events.map((e) => e.data), ["a", "b", "c", "d", "e"]);
});

test("data lines are joined with \\n; one space after the colon is dropped", () => {
  const { events } = parse("data: one\ndata:two\ndata:  three\ndata\ndata:\n\n");
  assert.deepEqual(events, [ev("message", "one\ntwo\n three\n\n")]);
});

test("a frame the stream ends before its blank line is not dispatched", () => {
  assert.deepEqual(parse("data: done\n\ndata: cut\n").events, [ev("message", "done")]);
  assert.deepEqual(parse("data: done\n\ndata: cut").events, [ev("message", "done")]);
  assert.deepEqual(parse("data: cut\r").events, []);
});

test("a frame without data is not dispatched, and its type does not carry over", () => {
  const { events } = parse("event: ready\n\ndata: x\n\nevent: tool\nid: 3\n\ndata: y\n\n");
  assert.deepEqual(events, [ev("message", "x"), ev("message", "y", "3")]);
});

test("an empty event field is a message", () => {
  assert.deepEqual(parse("event:\ndata: x\n\n").events, [ev("message", "x")]);
});

test("comments, unknown fields and a field without a value are ignored", () => {
  const { events } = parse(": keepalive\n\n:\ndata: x\nfoo: bar\nevent\n: another\n\n");
  assert.deepEqual(events, [ev("message", "x")]);
});

test("the last event id stays until an id field changes it; an id with NUL is ignored", () => {
  const { events } = parse("id: 1\ndata: a\n\ndata: b\n\nid: 2\u0000\ndata: c\n\nid\ndata: d\n\n");
  assert.deepEqual(events.map((e) => e.lastEventId), ["1", "1", "1", ""]);
});

test("retry takes ASCII digits only", () => {
  const { events, retries } = parse("retry: 3000\nretry: 1.5\nretry: -1\nretry: x\nretry:250\nretry: \n\n");
  assert.deepEqual(retries, [3000, 250]);
  assert.deepEqual(events, []);
});

test("one BOM at the very start is skipped, and only there", () => {
  assert.deepEqual(parse("\uFEFFdata: a\n\n").events, [ev("message", "a")]);
  // A second one is part of the first field's name ("\uFEFFdata"): unknown.
  assert.deepEqual(parse("\uFEFF\uFEFFdata: a\n\ndata: b\n\n").events, [ev("message", "b")]);
  assert.deepEqual(parse("data: a\n\n\uFEFFdata: b\n\n").events, [ev("message", "a")]);
  assert.deepEqual(parse("", "\uFEFF", "data: a\n\n").events, [ev("message", "a")]);
});

// Every kind of line end, a comment, an id, a retry, a BOM, text beyond
// ASCII, and a trailing frame that must not be dispatched.
const STREAM =
  "\uFEFFretry: 3000\r\nevent: ready\r\ndata: {\"channels\":[]}\r\n\r\n: keepalive\n\n" +
  "event: log\nid: 000000000001-000000000007\ndata: {\"message\":\"caf\u00e9 \u2014 \u{1F600}\"}\n\n" +
  "data: one\rdata: two\r\rid: 9\r\ndata: three\n\r\n" +
  "event: log\ndata: cut";

test("a stream split in two at every position parses as the whole", () => {
  const whole = parse(STREAM);
  assert.equal(whole.events.length, 4);
  assert.deepEqual(whole.retries, [3000]);
  for (let i = 0; i <= STREAM.length; i++) {
    assert.deepEqual(parse(STREAM.slice(0, i), STREAM.slice(i)), whole, "split at " + i);
  }
});

test("a stream split in three at every pair of positions parses as the whole", () => {
  const whole = parse(STREAM);
  for (let i = 0; i <= STREAM.length; i++) {
    for (let j = i; j <= STREAM.length; j++) {
      const got = parse(STREAM.slice(0, i), STREAM.slice(i, j), STREAM.slice(j));
      assert.deepEqual(got, whole, "split at " + i + ", " + j);
    }
  }
});

test("a stream one character at a time parses as the whole", () => {
  assert.deepEqual(parse(...STREAM), parse(STREAM));
});

test("a \\r\\n split between chunks ends one line, not two", () => {
  const { events } = parse("data: a\r", "\ndata: b\r", "\n\r", "\n");
  assert.deepEqual(events, [ev("message", "a\nb")]);
});

test("readSse: a body split at every byte, inside UTF-8 sequences and \\r\\n too", async () => {
  const bytes = new TextEncoder().encode(STREAM);
  const whole = parse(STREAM).events;
  for (let i = 0; i <= bytes.length; i++) {
    assert.deepEqual(await read([bytes.slice(0, i), bytes.slice(i)]), whole, "split at byte " + i);
  }
  assert.deepEqual(await read([...bytes].map((b) => Uint8Array.of(b))), whole);
});

test("readSse: the BOM is skipped once, as EventSource's decoder does", async () => {
  assert.deepEqual(await read(["\uFEFFdata: a\n\n"]), [ev("message", "a")]);
  assert.deepEqual(await read(["\uFEFF\uFEFFdata: a\n\ndata: b\n\n"]), [ev("message", "b")]);
});

test("readSse: hands over retry and stops once its signal aborts", async () => {
  const retries = [];
  const events = [];
  const stop = new AbortController();
  let pulls = 0;
  const endless = new ReadableStream({
    pull(c) {
      pulls += 1;
      c.enqueue(new TextEncoder().encode("retry: 10\ndata: " + pulls + "\n\n"));
    },
  });
  await readSse(endless, (e) => {
    events.push(e.data);
    if (events.length === 3) stop.abort();
  }, { signal: stop.signal, onRetry: (ms) => retries.push(ms) });
  assert.deepEqual(events, ["1", "2", "3"]);
  assert.deepEqual(retries, [10, 10, 10]);
});

test("readSse: a broken body rejects", async () => {
  let pulls = 0;
  const broken = new ReadableStream({
    pull(c) {
      pulls += 1;
      if (pulls === 1) c.enqueue(new TextEncoder().encode("data: a\n\ndata: b"));
      else c.error(new Error("connection reset"));
    },
  });
  const events = [];
  await assert.rejects(readSse(broken, (e) => events.push(e.data)), /connection reset/);
  assert.deepEqual(events, ["a"]);
});
