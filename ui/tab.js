// @ts-check
// What this browser tab holds besides the page: the view in its address
// bar (the history API), and the tokens, in sessionStorage (this tab
// only, gone when it closes).

import { parseView, takeToken, viewSearch } from "./view.js";

/** @typedef {import("./view.js").View} View */

const TOKEN_KEY = "loggate_token";
const ADMIN_KEY = "loggate_admin_token";

/**
 * The view the address bar says. A `token` there is kept in this tab and
 * taken out of the address (and so out of history, bookmarks and
 * Referer headers).
 * @returns {View}
 */
export function readAddress() {
  const { token, search } = takeToken(location.search);
  if (token) {
    setToken(token);
    history.replaceState(null, "", location.pathname + search + location.hash);
  }
  return parseView(search);
}

/**
 * Writes `view` to the address bar: a new history entry when `push`.
 * @param {View} view
 * @param {boolean} push
 */
export function writeAddress(view, push) {
  const url = location.pathname + viewSearch(view) + location.hash;
  if (push) history.pushState(null, "", url);
  else history.replaceState(null, "", url);
}

/** The subscriber token ("" when none). */
export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

/** @param {string} t */
export function setToken(t) {
  sessionStorage.setItem(TOKEN_KEY, t);
}

/** The admin token ("" when none). */
export function adminToken() {
  return sessionStorage.getItem(ADMIN_KEY) || "";
}

/** @param {string} t */
export function setAdminToken(t) {
  sessionStorage.setItem(ADMIN_KEY, t);
}
