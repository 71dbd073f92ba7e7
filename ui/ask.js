// The Ask panel: a question about the view's logs, answered by the
// gateway's model (`POST /api/logs/chat`, streamed as SSE): the tool calls
// as they are made, the answer as it arrives, then the final answer with
// its cited event ids as buttons that open those lines.
//
// The model's text is only ever set as text (paragraphs and `code` spans),
// never parsed as HTML. A new question aborts the one still running.

import { showDetail } from "./detail.js";
import { lineById } from "./list.js";
import { authHeaders, jsonBody, refusal, view } from "./view.js";

const CHAT = "../api/logs/chat";
const ARGS_CHARS = 80;
const DISABLED = "AI analysis is not set up on this gateway (set OPENROUTER_API_KEY)";
const STOPPED = {
  max_tool_rounds: "Stopped after the most tool rounds allowed; the answer may be partial.",
  token_budget: "Stopped at the token budget; the answer may be partial.",
  timeout: "Stopped at the time limit; the answer may be partial.",
  cancelled: "Cancelled; the answer may be partial.",
};

const $ = (id) => document.getElementById(id);

let controller = null;

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}

/** The view's channels as the chat's list. */
function channels() {
  return view.channels.split(",").map((c) => c.trim()).filter(Boolean);
}

function shortArgs(args) {
  if (!args || typeof args !== "object") return "";
  const text = Object.entries(args).map(([k, v]) => k + "=" + (typeof v === "string" ? v : JSON.stringify(v))).join(" ");
  return text.length > ARGS_CHARS ? text.slice(0, ARGS_CHARS - 1) + "…" : text;
}

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

function showError(message) {
  const e = $("ask-error");
  e.textContent = message;
  e.hidden = !message;
}

/** Opens the line with event id `id`, if the list has it. */
function openLine(id) {
  const line = lineById(id);
  if (!line) {
    showError("Line " + id + " is not in the list (it may be outside the view or too old).");
    return;
  }
  showError("");
  showDetail(line);
  line.el.scrollIntoView({ block: "center" });
}

function citeButton(id) {
  const b = el("button", "cite", id);
  b.type = "button";
  b.dataset.testid = "ask-cited";
  b.dataset.id = id;
  b.title = "Open this line";
  return b;
}

/** `text` with every cited id as a button. */
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

/** The final answer: paragraphs, `code` spans and cited ids, as text. */
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

function showDone(d) {
  const cited = Array.isArray(d.cited_ids) ? d.cited_ids.filter((c) => typeof c === "string" && c) : [];
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

function handle(event, data) {
  let d;
  try {
    d = JSON.parse(data);
  } catch (_) {
    return;
  }
  if (event === "tool") showTool(d);
  else if (event === "token") $("ask-answer").append(String(d.text || ""));
  else if (event === "done") showDone(d);
  else if (event === "error") showError("The answer failed: " + ((d.error && d.error.message) || "unknown error"));
}

async function readStream(body, signal) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (signal.aborted) return;
    if (done) break;
    buf += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    const parts = buf.split("\n\n");
    buf = parts.pop();
    for (const raw of parts) frame(raw);
  }
  if (buf.trim()) frame(buf);
}

function frame(raw) {
  let event = "message";
  const data = [];
  for (const line of raw.split("\n")) {
    if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  if (data.length) handle(event, data.join("\n"));
}

function refused(res, body) {
  const code = body && body.error && body.error.code;
  if (res.status === 503 && code === "ai_disabled") return DISABLED;
  const r = refusal(res, body);
  if (res.status === 401 || res.status === 403) return "Not allowed (" + res.status + "): " + r.message;
  if (res.status === 429) {
    const after = res.headers.get("Retry-After");
    return "Too many questions; " + (after ? "try again in " + after + " s." : "try again shortly.");
  }
  if (res.status === 502) return "The model server failed: " + r.message;
  return "Refused (" + res.status + "): " + r.message;
}

async function ask(question) {
  if (controller) controller.abort();
  const mine = new AbortController();
  controller = mine;
  $("ask-tools").replaceChildren();
  $("ask-answer").replaceChildren();
  $("ask-meta").replaceChildren();
  $("ask-meta").hidden = true;
  showError("");
  $("ask-panel").setAttribute("aria-busy", "true");
  $("ask-state").textContent = "Thinking…";
  try {
    const res = await fetch(CHAT, {
      method: "POST",
      headers: authHeaders({ "Content-Type": "application/json", Accept: "text/event-stream" }),
      body: JSON.stringify({ message: question, channels: channels() }),
      cache: "no-store",
      signal: mine.signal,
    });
    if (!res.ok) {
      showError(refused(res, await jsonBody(res)));
      return;
    }
    if (res.body) await readStream(res.body, mine.signal);
  } catch (e) {
    if (mine.signal.aborted) return;
    showError("The gateway is unreachable.");
  } finally {
    if (controller === mine) {
      controller = null;
      $("ask-panel").removeAttribute("aria-busy");
      $("ask-state").textContent = "";
    }
  }
}

function toggle() {
  const panel = $("ask-panel");
  panel.hidden = !panel.hidden;
  $("ask-toggle").classList.toggle("on", !panel.hidden);
  $("ask-toggle").setAttribute("aria-expanded", String(!panel.hidden));
  if (!panel.hidden) $("ask-input").focus();
}

export function setupAsk() {
  $("ask-toggle").addEventListener("click", toggle);
  $("ask-close").addEventListener("click", () => {
    if (!$("ask-panel").hidden) toggle();
    $("ask-toggle").focus();
  });
  $("ask-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = $("ask-input").value.trim();
    if (q) ask(q);
  });
  $("ask-answer").addEventListener("click", (ev) => {
    const b = ev.target.closest("[data-testid=ask-cited]");
    if (b) openLine(b.dataset.id);
  });
}
