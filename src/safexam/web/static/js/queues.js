// The queues page, kept current. The stream /api/v1/ops/queues/events sends the
// overview whenever it changes; each time, the live part of the page is fetched
// again, worded by the server, and only its changed sections are put in place,
// so a button that has the focus keeps it unless its own section changed (and
// then the same button in the new section gets it back).

import { localize } from "./local-time.js";

const root = document.getElementById("queues-live");
const status = document.getElementById("live-status");
const seen = new Map();
let fetching = false;
let again = false;

function say(text) {
  if (status.textContent !== text) status.textContent = text;
}

function replaceSection(fresh) {
  const current = document.getElementById(fresh.id);
  if (!current) return;
  const focused = current.contains(document.activeElement)
    ? document.activeElement.dataset.focusKey
    : undefined;
  current.replaceWith(fresh);
  localize(fresh);
  if (focused) {
    const same = fresh.querySelector(`[data-focus-key="${CSS.escape(focused)}"]`);
    if (same) same.focus();
  }
}

async function refresh() {
  if (fetching) {
    again = true;
    return;
  }
  fetching = true;
  try {
    const response = await fetch(root.dataset.liveUrl, {
      headers: { Accept: "text/html" },
      credentials: "same-origin",
    });
    if (response.redirected || !response.ok) {
      // Signed out, or no longer an admin: the page itself says what to do.
      window.location.reload();
      return;
    }
    const holder = document.createElement("div");
    holder.innerHTML = await response.text();
    for (const section of holder.querySelectorAll(":scope > section[id]")) {
      const html = section.outerHTML;
      if (seen.get(section.id) === html) continue;
      seen.set(section.id, html);
      replaceSection(section);
    }
  } catch {
    say("Live updates paused: the server is not answering. Trying again…");
  } finally {
    fetching = false;
    if (again) {
      again = false;
      refresh();
    }
  }
}

if (root && status && "EventSource" in window) {
  const source = new EventSource(root.dataset.eventsUrl);
  source.addEventListener("open", () => say("Live: this page updates by itself."));
  source.addEventListener("error", () => {
    // Closed for good (signed out, or refused): the browser will not reconnect.
    if (source.readyState === EventSource.CLOSED) {
      say("Live updates stopped. Reload the page to start them again.");
    } else {
      say("Live updates paused: reconnecting to the server…");
    }
  });
  source.addEventListener("queues", () => {
    say("Live: this page updates by itself.");
    refresh();
  });
}
