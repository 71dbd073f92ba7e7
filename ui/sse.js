// @ts-check
// Server-sent events as a client reads them, by the WHATWG EventSource
// parsing rules: lines end in "\r\n", "\n" or "\r"; a blank line
// dispatches the event; `data:` lines are joined with "\n"; `event:`,
// `id:` (the last one stays until changed) and `retry:` fields; comments
// (":…") and unknown fields are ignored; one U+FEFF at the very start is
// skipped; an event the stream ends before its blank line is dropped, as
// is one without data.
//
// Both of the viewer's streams (the live log stream and the Ask panel's
// answer) are read with fetch() rather than EventSource, for the
// Authorization header and the refusal's status and body, so the parsing
// is here, once. `SseParser` is pure (text in, events out);
// `readSse` feeds it a response body.

/**
 * One dispatched event, as an EventSource's MessageEvent would carry it.
 * @typedef {object} SseEvent
 * @property {string} type the `event:` field, "message" when none
 * @property {string} data the `data:` lines joined with "\n"
 * @property {string} lastEventId the latest `id:` the stream set, "" when none
 */

export class SseParser {
  /**
   * @param {(event: SseEvent) => void} onEvent
   * @param {(ms: number) => void} [onRetry] a `retry:` field's reconnection time
   */
  constructor(onEvent, onRetry) {
    this.onEvent = onEvent;
    this.onRetry = onRetry || (() => {});
    /** Nothing read yet: a BOM here is skipped. */
    this.atStart = true;
    /** The last chunk ended in "\r": a "\n" first in the next ends the same line. */
    this.afterCR = false;
    /** The unfinished line at the end of the last chunk. */
    this.partial = "";
    this.type = "";
    /** @type {string[]} */
    this.data = [];
    this.lastEventId = "";
  }

  /** Reads the next piece of the stream's text (any split is fine). @param {string} text */
  push(text) {
    if (!text) return;
    let start = 0;
    if (this.atStart) {
      this.atStart = false;
      if (text.charCodeAt(0) === 0xfeff) start = 1;
    }
    if (this.afterCR) {
      this.afterCR = false;
      if (text[start] === "\n") start += 1;
    }
    const ends = /[\r\n]/g;
    ends.lastIndex = start;
    for (let m = ends.exec(text); m; m = ends.exec(text)) {
      const line = this.partial + text.slice(start, m.index);
      this.partial = "";
      start = m.index + 1;
      if (text[m.index] === "\r") {
        if (start === text.length) this.afterCR = true;
        else if (text[start] === "\n") start += 1;
        ends.lastIndex = start;
      }
      this.line(line);
    }
    this.partial += text.slice(start);
  }

  /** The stream ended: an event without its blank line is not dispatched. */
  end() {
    this.partial = "";
    this.type = "";
    this.data = [];
    this.afterCR = false;
  }

  /** @param {string} line */
  line(line) {
    if (line === "") {
      this.dispatch();
      return;
    }
    if (line[0] === ":") return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value[0] === " ") value = value.slice(1);
    switch (field) {
      case "event":
        this.type = value;
        break;
      case "data":
        this.data.push(value);
        break;
      case "id":
        if (!value.includes("\0")) this.lastEventId = value;
        break;
      case "retry":
        if (/^[0-9]+$/.test(value)) this.onRetry(parseInt(value, 10));
        break;
      default:
        break;
    }
  }

  dispatch() {
    const { type, data } = this;
    this.type = "";
    this.data = [];
    if (data.length === 0) return;
    this.onEvent({ type: type || "message", data: data.join("\n"), lastEventId: this.lastEventId });
  }
}

/**
 * Reads an event stream's body to its end, handing each event to
 * `onEvent` as it completes. Stops early, quietly, once `signal` aborts.
 * A broken connection rejects, as the body's reader does.
 * @param {ReadableStream<Uint8Array>} body
 * @param {(event: SseEvent) => void} onEvent
 * @param {{ signal?: AbortSignal, onRetry?: (ms: number) => void }} [options]
 * @returns {Promise<void>}
 */
export async function readSse(body, onEvent, options = {}) {
  const reader = body.getReader();
  // The BOM stays in the text: the parser skips it (once, at the start).
  const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  const parser = new SseParser(onEvent, options.onRetry);
  for (;;) {
    const { value, done } = await reader.read();
    if (options.signal && options.signal.aborted) {
      reader.cancel().catch(() => {});
      return;
    }
    if (done) break;
    parser.push(decoder.decode(value, { stream: true }));
  }
  parser.push(decoder.decode());
  parser.end();
}
