// @ts-check
// "Download": the view's history, newest DOWNLOAD_PAGES pages, saved as
// one NDJSON file (oldest line first).

import { historyPage } from "./api.js";
import { el } from "./dom.js";

/** @typedef {import("./list.js").LogList} LogList */
/** @typedef {import("./view.js").View} View */

const DOWNLOAD_PAGE = 1000; // the gateway's largest page
const DOWNLOAD_PAGES = 50;  // at most 50,000 lines per download

/**
 * @param {View} view
 * @param {LogList} list where a failure is told
 * @param {HTMLButtonElement} button disabled while it runs
 */
export async function download(view, list, button) {
  /** @type {string[]} */
  const pages = [];
  /** @type {string | null} */
  let before = "end";
  button.disabled = true;
  try {
    for (let i = 0; i < DOWNLOAD_PAGES && before; i++) {
      const page = await historyPage(view, before, DOWNLOAD_PAGE);
      if (!page.ok) {
        list.addNotice("Download failed: " + page.refusal.message);
        return;
      }
      const { logs } = page.body;
      if (logs.length) pages.unshift(logs.map((e) => JSON.stringify(e) + "\n").join(""));
      before = page.body.prev_cursor;
    }
  } catch (_) {
    list.addNotice("Download failed: the gateway is unreachable.");
    return;
  } finally {
    button.disabled = false;
  }
  const blob = new Blob(pages, { type: "application/x-ndjson" });
  const a = el("a");
  a.href = URL.createObjectURL(blob);
  a.download = "loggate-" + view.channels.replace(/[^A-Za-z0-9_-]+/g, "_") + ".ndjson";
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}
