// @ts-check
// loggate's viewer: recent history, then the live stream, in one list.
//
// Plain modern JavaScript modules, no build step, no dependencies, served
// by the gateway under ui/. Every URL is relative, so the page works
// behind a path prefix. The modules:
//
//   view.js     the view as the address bar says it (pure)
//   tab.js      the tab's address bar and tokens
//   api.js      every request to the gateway, and its refusals
//   sse.js      reading an event stream (pure)
//   dom.js      elements by id, new elements
//   line.js     one line (and one notice) as DOM
//   list.js     the bounded list, pausing, rendering in animation frames
//   status.js   the connection state and the arrival rate
//   stream.js   history pages, the live stream, reconnects
//   download.js the view's history as an NDJSON file
//   detail.js   a line's JSON, copy buttons, filters from values
//   admin.js    the gateway panel (admin token)
//   ask.js      the Ask panel: questions to the gateway's model
//   channels.js the channel box: the channels that exist, offered as you type
//   main.js     this file: makes the one of each, wires the controls,
//               and starts the view
//
// State is passed, not shared: main.js holds the one `View` (what the
// address bar says) and hands it, and the list, to the parts that read or
// change them.

import { AdminPanel } from "./admin.js";
import { Ask } from "./ask.js";
import { ChannelBox } from "./channels.js";
import { Detail } from "./detail.js";
import { $, $as } from "./dom.js";
import { download } from "./download.js";
import { LogList } from "./list.js";
import { Status } from "./status.js";
import { Feed } from "./stream.js";
import { readAddress, setToken, writeAddress } from "./tab.js";

const view = readAddress();
const status = new Status();
const list = new LogList(view, status, showPaused);
const feed = new Feed(view, list, status, askForToken);
const detail = new Detail(view, list, applyView);

const channelsInput = $as("f-channels", HTMLInputElement);
const levelSelect = $as("f-level", HTMLSelectElement);
const queryInput = $as("f-q", HTMLInputElement);
const tokenInput = $as("token-input", HTMLInputElement);

/** The controls show the view. */
function fillForm() {
  channelsInput.value = view.channels;
  levelSelect.value = view.level;
  queryInput.value = view.q;
  $("time-zone").textContent = view.utc ? "UTC" : "Local";
  showPaused(view.paused);
}

/** @param {boolean} paused */
function showPaused(paused) {
  $("pause").classList.toggle("on", paused);
  $("pause").textContent = paused ? "Resume" : "Pause";
  $("paused-bar").hidden = !paused;
  status.setPaused(paused);
}

/** (Re)starts the view: an empty list, history, then live. */
async function start() {
  feed.stop();
  list.clear();
  detail.forget();
  $("token-form").hidden = true;
  const wanted = view.sel;
  const ok = await feed.begin();
  if (!ok) return;
  list.renderNow();
  list.scrollToBottom();
  detail.restore(wanted);
}

/** The view changed (a filter, the address): show it and start again. @param {boolean} push */
function applyView(push) {
  writeAddress(view, push);
  fillForm();
  start();
}

/** @param {string} why */
function askForToken(why) {
  feed.stop();
  status.setConnection("error", "token needed");
  $("token-why").textContent = why;
  $("token-form").hidden = false;
  tokenInput.focus();
}

function setup() {
  $("filters").addEventListener("submit", (ev) => {
    ev.preventDefault();
    view.channels = channelsInput.value.trim() || "logs:*";
    view.level = levelSelect.value;
    view.q = queryInput.value;
    view.sel = "";
    applyView(true);
  });
  $("token-entry").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const t = tokenInput.value.trim();
    if (!t) return;
    setToken(t);
    tokenInput.value = "";
    start();
  });
  $("time-zone").addEventListener("click", () => {
    view.utc = !view.utc;
    writeAddress(view, false);
    fillForm();
    list.refreshTimes();
  });
  $("pause").addEventListener("click", () => list.setPaused(!view.paused));
  $("live").addEventListener("click", () => list.setPaused(false));
  $("load-older").addEventListener("click", () => feed.loadOlder());
  const downloadButton = $as("download", HTMLButtonElement);
  downloadButton.addEventListener("click", () => download(view, list, downloadButton));
  window.addEventListener("popstate", () => {
    Object.assign(view, readAddress());
    fillForm();
    start();
  });
  list.watchScrolling();
  detail.setup();
  new AdminPanel().setup();
  new Ask(view, list, detail).setup();
  new ChannelBox(view, () => $as("filters", HTMLFormElement).requestSubmit()).setup();
  status.startRate();
}

setup();
fillForm();
writeAddress(view, false);
start();
