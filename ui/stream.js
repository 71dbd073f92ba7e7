// @ts-check
// The view's lines from the gateway: the newest history page, then the
// live stream resumed from where history ended (no seam: no duplicate, no
// gap), reconnects, and older pages on request.
//
// The stream is read with fetch() rather than EventSource (see api.js):
// a refused connection shows its status and message (EventSource gives up
// silently on 401/429/503), and the page decides when to reconnect: with
// backoff, after `Retry-After`, always with the last event id it has.

import { $ } from "./dom.js";
import { historyPage, isTransient, liveStream, needsToken, retryAfterMs } from "./api.js";
import { readSse } from "./sse.js";

/** @typedef {import("./api.js").Refusal} Refusal */
/** @typedef {import("./list.js").LogList} LogList */
/** @typedef {import("./sse.js").SseEvent} SseEvent */
/** @typedef {import("./status.js").Status} Status */
/** @typedef {import("./view.js").View} View */

const HISTORY_LINES = 500; // shown from history before going live
const OLDER_PAGE = 500;    // lines per "Load older"
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30000;

/** Why a gap happened, as the gateway names it, in words. */
const GAP_REASONS = {
  history_trimmed: "older lines were no longer kept",
  replay_truncated: "more was missed than one reconnect carries",
  unknown_epoch: "the gateway restarted; lines from before are gone",
  cluster_loss: "lines were lost between gateway nodes",
};

/**
 * Ids grow in the order the gateway accepts events (fixed width, so as
 * text too).
 * @param {string} a
 * @param {string} b
 */
function newer(a, b) {
  return a > b ? a : b;
}

/** @param {any} g a `gap` event's data */
function describeGap(g) {
  const why = GAP_REASONS[/** @type {keyof typeof GAP_REASONS} */ (g.reason)] || g.reason;
  const lost = g.lost != null ? g.lost + " line(s) missing" : "some lines may be missing";
  const since = g.resumed_from ? ", resumed from " + g.resumed_from : "";
  return "Gap: " + lost + " (" + why + ")" + since + ".";
}

export class Feed {
  /**
   * @param {View} view what to read
   * @param {LogList} list where lines and notices go
   * @param {Status} status shows the connection's state
   * @param {(why: string) => void} onToken runs when the gateway wants a (new) token
   */
  constructor(view, list, status, onToken) {
    this.view = view;
    this.list = list;
    this.status = status;
    this.onToken = onToken;
    /** Aborts the open stream. @type {AbortController | null} */
    this.controller = null;
    /** Bumped by every (re)start: answers of an older generation are ignored. */
    this.generation = 0;
    /** Failed tries since the stream was last live (backoff, and one notice per outage). */
    this.attempt = 0;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.retryTimer = undefined;
    /** The newest event id seen: the stream resumes after it. */
    this.lastId = "";
    /** Where the page before the oldest line shown begins. @type {string | null} */
    this.olderCursor = null;
    /** The gateway ended the stream because the token expired. */
    this.expired = false;
  }

  /** @param {string | null} cursor */
  setOlderCursor(cursor) {
    this.olderCursor = cursor;
    $("load-older").hidden = !cursor;
  }

  /** Stops the stream and forgets where it was (the view changes). */
  stop() {
    this.generation += 1;
    if (this.controller) this.controller.abort();
    this.controller = null;
    clearTimeout(this.retryTimer);
    this.attempt = 0;
    this.lastId = "";
    this.setOlderCursor(null);
  }

  /** History, then the live stream from where it ends; false if history failed. */
  begin() {
    this.stop();
    this.status.setConnection("connecting");
    return this.historyThenLive();
  }

  /** @returns {Promise<boolean>} */
  async historyThenLive() {
    const gen = this.generation;
    let page;
    try {
      page = await historyPage(this.view, "end", Math.min(HISTORY_LINES, this.view.max));
    } catch (_) {
      if (gen !== this.generation) return false;
      if (this.attempt === 0) this.list.addNotice("The gateway is unreachable; retrying.", "info");
      this.retryLater("gateway unreachable", null, () => this.historyThenLive());
      return false;
    }
    if (gen !== this.generation) return false;
    if (!page.ok) {
      this.refused(page.refusal, "History refused", () => this.historyThenLive());
      return false;
    }
    const { logs, last_id: lastId, prev_cursor: cursor } = page.body;
    this.list.addHistory(logs);
    if (logs.length) this.lastId = logs[logs.length - 1].id;
    // The newest event the gateway had accepted when it read the page: a
    // filtered page may end long before it.
    if (lastId) this.lastId = newer(this.lastId, lastId);
    this.setOlderCursor(cursor);
    this.connect();
    return true;
  }

  /**
   * A refused request: a token to ask for, a wait, or an error to show.
   * @param {Refusal} r
   * @param {string} what "History refused", "Refused"
   * @param {() => void} retry
   */
  refused(r, what, retry) {
    if (needsToken(r)) {
      this.onToken(r.message);
    } else if (isTransient(r)) {
      if (this.attempt === 0) this.list.addNotice(what + " (" + r.status + "): " + r.message + "; retrying.", "info");
      this.retryLater(r.status === 429 ? "rate limited" : "gateway busy", retryAfterMs(r), retry);
    } else {
      this.status.setConnection("error", r.message);
      this.list.addNotice(what + " (" + r.status + "): " + r.message);
    }
  }

  /**
   * @param {string} reason shown beside "reconnecting"
   * @param {number | null} [afterMs] the wait the gateway asked for
   * @param {() => void} [what] the retry; connecting again by default
   */
  retryLater(reason, afterMs = null, what = () => this.connect()) {
    const backoff = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(this.attempt, 6));
    // Jittered, so that many viewers of a restarted gateway come back spread out.
    const wait = afterMs != null ? afterMs * (1 + Math.random() / 5) : backoff / 2 + Math.random() * backoff / 2;
    this.attempt += 1;
    this.status.setConnection("reconnecting", reason);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(what, wait);
  }

  /** @param {SseEvent} f */
  onEvent(f) {
    /** @type {any} */
    let data = null;
    try {
      data = f.data ? JSON.parse(f.data) : null;
    } catch (_) {
      data = null;
    }
    switch (f.type) {
      case "ready":
        if (this.attempt > 0) this.list.addNotice("Reconnected.", "info");
        this.attempt = 0;
        this.status.setConnection("live");
        break;
      case "log":
        if (data) {
          this.lastId = data.id || this.lastId;
          this.list.addEvent(data);
        }
        break;
      case "lag":
        this.list.addNotice("Lag: " + (data ? data.dropped : "some") + " line(s) dropped: this view could not keep up.");
        break;
      case "gap":
        if (data) this.list.addNotice(describeGap(data));
        break;
      case "shutdown":
        this.list.addNotice("The gateway is shutting down; reconnecting.", "info");
        break;
      case "expired":
        this.expired = true;
        break;
      default:
        break;
    }
  }

  async connect() {
    clearTimeout(this.retryTimer);
    const gen = ++this.generation;
    if (this.controller) this.controller.abort();
    const controller = new AbortController();
    this.controller = controller;
    this.expired = false;
    let answer;
    try {
      answer = await liveStream(this.view, this.lastId, controller.signal);
    } catch (_) {
      if (gen !== this.generation) return;
      if (this.attempt === 0) this.list.addNotice("Connection lost; reconnecting.", "info");
      this.retryLater("gateway unreachable");
      return;
    }
    if (gen !== this.generation) return;
    if (!answer.ok) {
      this.refused(answer.refusal, "Refused", () => this.connect());
      return;
    }
    try {
      if (answer.body) await readSse(answer.body, (f) => gen === this.generation && this.onEvent(f));
    } catch (_) {
      // The stream broke (network, or our own abort).
    }
    if (gen !== this.generation) return;
    if (this.expired) {
      this.onToken("The token expired; enter a new one.");
      return;
    }
    if (this.attempt === 0 && this.status.connection === "live") this.list.addNotice("Connection lost; reconnecting.", "info");
    this.retryLater("stream ended");
  }

  /** "Load older": the page before the oldest line shown. */
  async loadOlder() {
    if (!this.olderCursor) return;
    const { view, list } = this;
    if (list.size >= view.max) {
      list.addNotice("This view keeps at most " + view.max + " lines; add &max= to the address for more.", "info");
      return;
    }
    const gen = this.generation;
    let page;
    try {
      page = await historyPage(view, this.olderCursor, Math.min(OLDER_PAGE, view.max - list.size));
    } catch (_) {
      if (gen === this.generation) list.addNotice("Could not load older lines: the gateway is unreachable.");
      return;
    }
    if (gen !== this.generation) return;
    if (!page.ok) {
      list.addNotice("Could not load older lines: " + page.refusal.message);
      return;
    }
    list.prependOlder(page.body.logs);
    this.setOlderCursor(page.body.prev_cursor);
  }
}
