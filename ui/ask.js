// @ts-check
// The Ask panel: a question about the view's logs, answered by the
// gateway's model (`POST /api/logs/chat`, streamed as SSE): the tool calls
// as they are made, the answer as it arrives, then the final answer with
// its cited event ids as buttons that open those lines.
//
// The model's text is only ever set as text (paragraphs and `code` spans),
// never parsed as HTML. A new question aborts the one still running.

import { chat } from "./api.js";
import { $, $as, closest, el } from "./dom.js";
import { readSse } from "./sse.js";
import { channelList } from "./view.js";

/** @typedef {import("./api.js").Refusal} Refusal */
/** @typedef {import("./detail.js").Detail} Detail */
/** @typedef {import("./list.js").LogList} LogList */
/** @typedef {import("./sse.js").SseEvent} SseEvent */
/** @typedef {import("./view.js").View} View */

const ARGS_CHARS = 80;
const DISABLED = "AI analysis is not set up on this gateway (set OPENROUTER_API_KEY)";
/** @type {Record<string, string>} */
const STOPPED = {
  max_tool_rounds: "Stopped after the most tool rounds allowed; the answer may be partial.",
  token_budget: "Stopped at the token budget; the answer may be partial.",
  timeout: "Stopped at the time limit; the answer may be partial.",
  cancelled: "Cancelled; the answer may be partial.",
};

/** A tool call's arguments, short. @param {unknown} args */
function shortArgs(args) {
  if (!args || typeof args !== "object") return "";
  const text = Object.entries(args).map(([k, v]) => k + "=" + (typeof v === "string" ? v : JSON.stringify(v))).join(" ");
  return text.length > ARGS_CHARS ? text.slice(0, ARGS_CHARS - 1) + "…" : text;
}

/** A `tool` event: one call the model made. @param {any} t */
function showTool(t) {
  const li = el("li", "ask-tool");
  li.dataset.testid = "ask-tool";
  li.dataset.name = String(t.name || "");
  li.append(el("code", "name", String(t.name || "?")));
  const args = shortArgs(t.arguments);
  if (args) li.append(" ", el("span", "args", args));
  if (t.error) li.append(" ", el("span", "err", "error: " + (typeof t.error === "string" ? t.error : JSON.stringify(t.error))));
  else if (t.returned != null) li.append(" ", el("span", "count", "→ " + t.returned + (t.truncated ? "+ (truncated)" : "")));
  $("ask-tools").append(li);
}

/** @param {string} message "" hides the error */
function showError(message) {
  const e = $("ask-error");
  e.textContent = message;
  e.hidden = !message;
}

/** @param {string} id */
function citeButton(id) {
  const b = el("button", "cite", id);
  b.type = "button";
  b.dataset.testid = "ask-cited";
  b.dataset.id = id;
  b.title = "Open this line";
  return b;
}

/**
 * `text` with every cited id as a button.
 * @param {string} text
 * @param {string[]} cited
 * @param {HTMLElement} into
 */
function withCitations(text, cited, into) {
  let at = 0;
  while (at < text.length) {
    let best = -1;
    let which = "";
    for (const id of cited) {
      const i = text.indexOf(id, at);
      if (i >= 0 && (best < 0 || i < best)) {
        best = i;
        which = id;
      }
    }
    if (best < 0) break;
    into.append(text.slice(at, best), citeButton(which));
    at = best + which.length;
  }
  into.append(text.slice(at));
}

/**
 * The final answer: paragraphs, `code` spans and cited ids, as text.
 * @param {string} text
 * @param {string[]} cited
 */
function renderAnswer(text, cited) {
  const frag = document.createDocumentFragment();
  for (const para of text.split(/\n\s*\n/)) {
    if (!para.trim()) continue;
    const p = el("p");
    para.trim().split("`").forEach((piece, i) => {
      // Odd pieces were between backticks (an unclosed one stays text).
      if (i % 2 === 1) {
        if (cited.includes(piece.trim())) p.append(citeButton(piece.trim()));
        else p.append(el("code", null, piece));
      } else withCitations(piece, cited, p);
    });
    frag.append(p);
  }
  $("ask-answer").replaceChildren(frag);
}

/** The `done` event: the final answer and what it cost. @param {any} d */
function showDone(d) {
  /** @type {string[]} */
  const cited = Array.isArray(d.cited_ids) ? d.cited_ids.filter((/** @type {unknown} */ c) => typeof c === "string" && c) : [];
  renderAnswer(String(d.response || ""), cited);
  const meta = [];
  if (d.model) meta.push(String(d.model));
  if (d.usage && d.usage.total_tokens != null) meta.push(d.usage.total_tokens + " tokens");
  const ms = d.processing_time_ms;
  if (typeof ms === "number") meta.push(ms < 1000 ? ms + " ms" : (ms / 1000).toFixed(1) + " s");
  if (d.redacted > 0) meta.push(d.redacted + (d.redacted === 1 ? " secret" : " secrets") + " redacted");
  const m = $("ask-meta");
  m.replaceChildren(el("span", null, meta.join(" · ")));
  if (d.stopped) m.append(el("p", "note", STOPPED[d.stopped] || "Stopped: " + d.stopped));
  // A model server that ended for a reason of its own (OpenRouter's
  // "error", a length cut) may have left the answer short: say so.
  const fin = d.finish_reason;
  if (typeof fin === "string" && fin !== "stop" && fin !== "tool_calls") {
    m.append(el("p", "note", "The model server ended its answer with finish_reason \u201c" + fin + "\u201d."));
  }
  m.hidden = false;
}

/** One event of the answer's stream. @param {SseEvent} e */
function handle(e) {
  /** @type {any} */
  let d;
  try {
    d = JSON.parse(e.data);
  } catch (_) {
    return;
  }
  if (e.type === "tool") showTool(d);
  else if (e.type === "token") $("ask-answer").append(String(d.text || ""));
  else if (e.type === "done") showDone(d);
  else if (e.type === "error") showError("The answer failed: " + ((d.error && d.error.message) || "unknown error"));
}

/** What a refused question says. @param {Refusal} r */
function refused(r) {
  if (r.status === 503 && r.code === "ai_disabled") return DISABLED;
  if (r.status === 401 || r.status === 403) return "Not allowed (" + r.status + "): " + r.message;
  if (r.status === 429) {
    return "Too many questions; " + (r.retryAfter ? "try again in " + r.retryAfter + " s." : "try again shortly.");
  }
  if (r.status === 502) return "The model server failed: " + r.message;
  return "Refused (" + r.status + "): " + r.message;
}

export class Ask {
  /**
   * @param {View} view the channels asked about
   * @param {LogList} list where cited lines are looked up
   * @param {Detail} detail opens a cited line
   */
  constructor(view, list, detail) {
    this.view = view;
    this.list = list;
    this.detail = detail;
    /** Aborts the question still running. @type {AbortController | null} */
    this.controller = null;
  }

  /** Opens the line with event id `id`, if the list has it. @param {string} id */
  openLine(id) {
    const line = this.list.lineById(id);
    if (!line) {
      showError("Line " + id + " is not in the list (it may be outside the view or too old).");
      return;
    }
    showError("");
    this.detail.show(line);
    line.el.scrollIntoView({ block: "center" });
  }

  /** @param {string} question */
  async ask(question) {
    if (this.controller) this.controller.abort();
    const mine = new AbortController();
    this.controller = mine;
    $("ask-tools").replaceChildren();
    $("ask-answer").replaceChildren();
    $("ask-meta").replaceChildren();
    $("ask-meta").hidden = true;
    showError("");
    $("ask-panel").setAttribute("aria-busy", "true");
    $("ask-state").textContent = "Thinking…";
    try {
      const answer = await chat(question, channelList(this.view), mine.signal);
      if (!answer.ok) {
        showError(refused(answer.refusal));
        return;
      }
      if (answer.body) await readSse(answer.body, handle, { signal: mine.signal });
    } catch (e) {
      if (mine.signal.aborted) return;
      showError("The gateway is unreachable.");
    } finally {
      if (this.controller === mine) {
        this.controller = null;
        $("ask-panel").removeAttribute("aria-busy");
        $("ask-state").textContent = "";
      }
    }
  }

  toggle() {
    const panel = $("ask-panel");
    panel.hidden = !panel.hidden;
    $("ask-toggle").classList.toggle("on", !panel.hidden);
    $("ask-toggle").setAttribute("aria-expanded", String(!panel.hidden));
    if (!panel.hidden) $("ask-input").focus();
  }

  setup() {
    $("ask-toggle").addEventListener("click", () => this.toggle());
    $("ask-close").addEventListener("click", () => {
      if (!$("ask-panel").hidden) this.toggle();
      $("ask-toggle").focus();
    });
    $("ask-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const q = $as("ask-input", HTMLInputElement).value.trim();
      if (q) this.ask(q);
    });
    $("ask-answer").addEventListener("click", (ev) => {
      const b = closest(ev, "[data-testid=ask-cited]");
      if (b) this.openLine(b.dataset.id || "");
    });
  }
}
