// loggate's viewer: recent history, then the live stream, in one list.
//
// Plain modern JavaScript modules, no build step, no dependencies, served
// by the gateway under ui/. Every URL is relative, so the page works
// behind a path prefix. The modules:
//
//   view.js    the address bar's view, tokens, request helpers
//   line.js    one line (and one notice) as DOM
//   list.js    the bounded list, pausing, rendering in animation frames
//   status.js  the connection state and the arrival rate
//   stream.js  history pages, the live stream, reconnects, the download
//   detail.js  a line's JSON, copy buttons, filters from values
//   admin.js   the gateway panel (admin token)
//   ask.js     the Ask panel: questions to the gateway's model
//   channels.js the channel box: the channels that exist, offered as you type
//   main.js    this file: the controls, and starting the view

import { setupAdmin } from "./admin.js";
import { setupAsk } from "./ask.js";
import { setupChannels } from "./channels.js";
import { forgetDetail, restoreSelection, setupDetail } from "./detail.js";
import { clear, onPause, refreshTimes, renderNow, scrollToBottom, setPaused, watchScrolling } from "./list.js";
import { setConnection, setPausedState, startRate } from "./status.js";
import { begin, download, loadOlder, onTokenNeeded, stop } from "./stream.js";
import { readView, setToken, view, writeView } from "./view.js";

const $ = (id) => document.getElementById(id);

/** The controls show the view. */
function fillForm() {
  $("f-channels").value = view.channels;
  $("f-level").value = view.level;
  $("f-q").value = view.q;
  $("time-zone").textContent = view.utc ? "UTC" : "Local";
  showPaused(view.paused);
}

function showPaused(paused) {
  $("pause").classList.toggle("on", paused);
  $("pause").textContent = paused ? "Resume" : "Pause";
  $("paused-bar").hidden = !paused;
  setPausedState(paused);
}

/** (Re)starts the view: an empty list, history, then live. */
async function start() {
  stop();
  clear();
  forgetDetail();
  $("token-form").hidden = true;
  const wanted = view.sel;
  const ok = await begin();
  if (!ok) return;
  renderNow();
  scrollToBottom();
  restoreSelection(wanted);
}

/** The view changed (a filter, the address): show it and start again. */
function applyView(push) {
  writeView(push);
  fillForm();
  start();
}

function askForToken(why) {
  stop();
  setConnection("error", "token needed");
  $("token-why").textContent = why;
  $("token-form").hidden = false;
  $("token-input").focus();
}

function setup() {
  $("filters").addEventListener("submit", (ev) => {
    ev.preventDefault();
    view.channels = $("f-channels").value.trim() || "logs:*";
    view.level = $("f-level").value;
    view.q = $("f-q").value;
    view.sel = "";
    applyView(true);
  });
  $("token-entry").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const t = $("token-input").value.trim();
    if (!t) return;
    setToken(t);
    $("token-input").value = "";
    start();
  });
  $("time-zone").addEventListener("click", () => {
    view.utc = !view.utc;
    writeView(false);
    fillForm();
    refreshTimes();
  });
  $("pause").addEventListener("click", () => setPaused(!view.paused));
  $("live").addEventListener("click", () => setPaused(false));
  $("load-older").addEventListener("click", () => loadOlder());
  $("download").addEventListener("click", (ev) => download(ev.currentTarget));
  window.addEventListener("popstate", () => {
    readView();
    fillForm();
    start();
  });
  onPause(showPaused);
  onTokenNeeded(askForToken);
  watchScrolling();
  setupDetail(applyView);
  setupAdmin();
  setupAsk();
  setupChannels(() => $("filters").requestSubmit());
  startRate();
}

readView();
setup();
fillForm();
writeView(false);
start();
