// The view as the address bar says it: parsing, writing, the token taken
// out, and the query a stream or history page carries.

import assert from "node:assert/strict";
import { test } from "node:test";

import { channelList, DEFAULT_MAX, defaultView, MAX_QUERY, parseView, takeToken, viewQuery, viewSearch } from "../view.js";

test("an empty address is the default view", () => {
  assert.deepEqual(parseView(""), defaultView());
  assert.deepEqual(defaultView(), {
    channels: "logs:*", level: "", q: "", paused: false, sel: "", utc: false, max: DEFAULT_MAX,
  });
});

test("every field is read", () => {
  const v = parseView("?channels=logs:etl:ws1&level=warn&q=time%20out&paused=1&sel=000000000001-000000000002&utc=1&max=700");
  assert.deepEqual(v, {
    channels: "logs:etl:ws1", level: "warn", q: "time out", paused: true,
    sel: "000000000001-000000000002", utc: true, max: 700,
  });
});

test("what is missing or wrong is the default", () => {
  assert.equal(parseView("?channels=%20%20").channels, "logs:*");
  assert.equal(parseView("?channels=%20logs:a%20").channels, "logs:a");
  assert.equal(parseView("?level=loud").level, "");
  assert.equal(parseView("?level=WARN").level, "");
  assert.equal(parseView("?paused=true").paused, false);
  assert.equal(parseView("?utc=yes").utc, false);
  assert.equal(parseView("?max=99").max, DEFAULT_MAX);
  assert.equal(parseView("?max=100").max, 100);
  assert.equal(parseView("?max=many").max, DEFAULT_MAX);
  assert.equal(parseView("?max=1000000").max, 100000);
  assert.equal(parseView("?q=" + "x".repeat(MAX_QUERY + 10)).q.length, MAX_QUERY);
});

test("a view written and read back is the same view", () => {
  const views = [
    defaultView(),
    { ...defaultView(), channels: "logs:a,logs:b:*", q: "a&b=c #d +e %", level: "fatal" },
    { channels: "logs:x", level: "trace", q: "ü", paused: true, sel: "1-2", utc: true, max: 100000 },
  ];
  for (const v of views) assert.deepEqual(parseView(viewSearch(v)), v);
});

test("only what differs from the default is written, besides the channels", () => {
  assert.equal(viewSearch(defaultView()), "?channels=logs%3A*");
  assert.equal(
    viewSearch({ ...defaultView(), level: "warn", paused: true, utc: true, max: 200 }),
    "?channels=logs%3A*&level=warn&paused=1&utc=1&max=200",
  );
});

test("a token is taken out of the address, the rest kept", () => {
  assert.deepEqual(takeToken("?channels=logs:etl&token=abc.def&level=info"), {
    token: "abc.def",
    search: "?channels=logs%3Aetl&level=info",
  });
  assert.deepEqual(takeToken("?token=t"), { token: "t", search: "" });
  assert.equal(takeToken("?channels=logs:etl").token, "");
});

test("a stream or history page carries channels, level and text only", () => {
  const v = { ...defaultView(), channels: "logs:a", level: "error", q: "boom", paused: true, sel: "x", utc: true, max: 300 };
  assert.equal(viewQuery(v).toString(), "channels=logs%3Aa&level=error&q=boom");
  assert.equal(viewQuery(defaultView()).toString(), "channels=logs%3A*");
});

test("the channels as a list", () => {
  assert.deepEqual(channelList({ ...defaultView(), channels: " logs:a , ,logs:b:*," }), ["logs:a", "logs:b:*"]);
});
