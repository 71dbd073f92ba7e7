// The status area: the connection's state (connecting, live, reconnecting,
// error) as `[data-testid="status"]`, shown as "paused" while the view is
// paused on a live stream; and the arrival rate in lines per second.

const RATE_SECONDS = 5;

const el = () => document.getElementById("status");

let connection = "connecting";
let detail = "";
let paused = false;

function show() {
  const word = connection === "live" && paused ? "paused" : connection;
  const s = el();
  s.textContent = detail ? word + " · " + detail : word;
  s.className = "status " + word;
  s.title = detail;
}

/** The stream's state: "connecting", "live", "reconnecting" or "error". */
export function setConnection(state, why) {
  connection = state;
  detail = why || "";
  show();
}

export function setPausedState(p) {
  paused = p;
  show();
}

export function connectionState() {
  return connection;
}

// Arrivals in one-second buckets: bounded whatever the rate.
const buckets = new Array(RATE_SECONDS + 1).fill(0);
let bucketSecond = Math.floor(performance.now() / 1000);

function roll() {
  const now = Math.floor(performance.now() / 1000);
  for (let s = bucketSecond + 1; s <= now && s <= bucketSecond + buckets.length; s++) {
    buckets[s % buckets.length] = 0;
  }
  bucketSecond = now;
}

/** Counts `n` lines arriving now. */
export function arrived(n) {
  roll();
  buckets[bucketSecond % buckets.length] += n;
}

/** Lines per second over the last complete seconds. */
export function rate() {
  roll();
  let sum = 0;
  for (let i = 1; i <= RATE_SECONDS; i++) sum += buckets[(bucketSecond - i + buckets.length * 2) % buckets.length];
  return sum / RATE_SECONDS;
}

export function startRate() {
  setInterval(() => {
    const r = rate();
    document.getElementById("rate").textContent = (r < 10 ? r.toFixed(1) : Math.round(r)) + " lines/s";
  }, 1000);
}
