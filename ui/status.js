// @ts-check
// The status area: the connection's state (connecting, live, reconnecting,
// error) as `[data-testid="status"]`, shown as "paused" while the view is
// paused on a live stream; and the arrival rate in lines per second.

import { $ } from "./dom.js";

const RATE_SECONDS = 5;

/** @typedef {"connecting" | "live" | "reconnecting" | "error"} Connection */

export class Status {
  constructor() {
    /** @type {Connection} */
    this.connection = "connecting";
    /** Why, shown after the state ("" for nothing). */
    this.detail = "";
    this.paused = false;
    /** Arrivals in one-second buckets: bounded whatever the rate. */
    this.buckets = new Array(RATE_SECONDS + 1).fill(0);
    this.bucketSecond = Math.floor(performance.now() / 1000);
  }

  show() {
    const word = this.connection === "live" && this.paused ? "paused" : this.connection;
    const s = $("status");
    s.textContent = this.detail ? word + " · " + this.detail : word;
    s.className = "status " + word;
    s.title = this.detail;
  }

  /**
   * The stream's state, and why.
   * @param {Connection} state
   * @param {string} [why]
   */
  setConnection(state, why) {
    this.connection = state;
    this.detail = why || "";
    this.show();
  }

  /** @param {boolean} paused */
  setPaused(paused) {
    this.paused = paused;
    this.show();
  }

  roll() {
    const now = Math.floor(performance.now() / 1000);
    const n = this.buckets.length;
    for (let s = this.bucketSecond + 1; s <= now && s <= this.bucketSecond + n; s++) this.buckets[s % n] = 0;
    this.bucketSecond = now;
  }

  /** Counts `n` lines arriving now. @param {number} n */
  arrived(n) {
    this.roll();
    this.buckets[this.bucketSecond % this.buckets.length] += n;
  }

  /** Lines per second over the last complete seconds. */
  rate() {
    this.roll();
    const n = this.buckets.length;
    let sum = 0;
    for (let i = 1; i <= RATE_SECONDS; i++) sum += this.buckets[(this.bucketSecond - i + n * 2) % n];
    return sum / RATE_SECONDS;
  }

  /** Shows the rate every second. */
  startRate() {
    setInterval(() => {
      const r = this.rate();
      $("rate").textContent = (r < 10 ? r.toFixed(1) : Math.round(r)) + " lines/s";
    }, 1000);
  }
}
