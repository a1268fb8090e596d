// Integrity capture: exactly what the lobby told the student is recorded
// (web/wording.py INTEGRITY_EVENTS), batched to the events route. A paste is
// recorded with its length in characters; its text never leaves the page.
//
// Events wait in a small queue, kept in localStorage too, so that events made
// offline, or just before a reload, are sent when the page can.

import { announce } from "./announce.js";

const FLUSH_EVERY_MS = 5_000;
const FLUSH_AT = 20;
const MAX_BATCH = 100; // the route's limit
// A page that cannot send for hours keeps the most recent events only.
const MAX_KEPT = 1_000;
const RETRY_MAX_MS = 60_000;

function storageKey(sessionId) {
  return `safexam:integrity:${sessionId}`;
}

function load(sessionId) {
  try {
    const kept = JSON.parse(window.localStorage.getItem(storageKey(sessionId)) || "[]");
    return Array.isArray(kept) ? kept : [];
  } catch {
    return [];
  }
}

function store(sessionId, events) {
  try {
    if (events.length) window.localStorage.setItem(storageKey(sessionId), JSON.stringify(events));
    else window.localStorage.removeItem(storageKey(sessionId));
  } catch {
    // Storage refused: the events are still in memory for this page.
  }
}

function characters(text) {
  let count = 0;
  for (const _ of text) count += 1; // code points, not UTF-16 units
  return count;
}

export function startIntegrity({ sessionId, csrf }) {
  const form = document.getElementById("exam");
  const requireFullscreen = form?.dataset.requireFullscreen === "true";
  let queue = load(sessionId);
  // Each event has a number on this page so that a send that overlaps
  // another (a keepalive one as the page hides) never sends it twice.
  let next = 0;
  for (const event of queue) event.n = next++;
  const inFlight = new Set();
  let sending = null;
  let failures = 0;
  let retryAt = 0;
  let closed = false;
  // Set once the page is being left: a page on its way out records nothing
  // more, so the next page of the session does not send its events twice.
  let leaving = false;

  function record(kind, details = {}) {
    if (closed || leaving) return;
    queue.push({ n: next++, kind, at: new Date().toISOString(), details });
    if (queue.length > MAX_KEPT) queue = queue.slice(-MAX_KEPT);
    store(sessionId, queue);
    if (queue.length >= FLUSH_AT) flush();
  }

  function backOff() {
    failures += 1;
    retryAt = performance.now() + Math.min(RETRY_MAX_MS, 1000 * 2 ** failures);
  }

  // Send one batch and settle its events: true when the next may follow.
  async function sendBatch(batch, keepalive) {
    const numbers = new Set(batch.map((event) => event.n));
    for (const n of numbers) inFlight.add(n);
    let response;
    try {
      response = await fetch(`/api/v1/sessions/${sessionId}/events`, {
        method: "POST",
        credentials: "same-origin",
        keepalive,
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify({
          events: batch.map(({ kind, at, details }) => ({ kind, at, details })),
        }),
      });
    } catch {
      backOff();
      return false; // offline: kept for later
    } finally {
      for (const n of numbers) inFlight.delete(n);
    }
    if (response.ok || response.status === 422) {
      // Sent, or a batch the server will never take: either way it is done.
      queue = queue.filter((event) => !numbers.has(event.n));
      store(sessionId, queue);
      failures = 0;
      retryAt = 0;
      return true;
    }
    if (response.status === 409 || response.status === 404) {
      // The session has ended (past its grace) or is gone: nothing more to record.
      closed = true;
      queue = [];
      store(sessionId, queue);
      return false;
    }
    backOff();
    return false;
  }

  function unsent() {
    return queue.filter((event) => !inFlight.has(event.n));
  }

  async function flushNow() {
    while (!closed) {
      const batch = unsent().slice(0, MAX_BATCH);
      if (!batch.length || !(await sendBatch(batch, false))) return;
    }
  }

  // Send what is queued. When the page is hidden or left, every batch leaves
  // at once with keepalive, which outlives the page.
  function flush({ keepalive = false, force = false } = {}) {
    if (!queue.length || closed || leaving) return Promise.resolve();
    if (keepalive) {
      const pending = unsent();
      const sends = [];
      for (let i = 0; i < pending.length; i += MAX_BATCH) {
        sends.push(sendBatch(pending.slice(i, i + MAX_BATCH), true));
      }
      return Promise.all(sends);
    }
    if (!force && performance.now() < retryAt) return Promise.resolve();
    if (!sending) {
      sending = flushNow().finally(() => {
        sending = null;
      });
    }
    return sending;
  }

  // The window's own focus, not a field's: those events do not bubble up here.
  window.addEventListener("blur", (event) => {
    if (event.target === window) record("focus_lost");
  });
  window.addEventListener("focus", (event) => {
    if (event.target === window) record("focus_gained");
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") {
      record("visibility_hidden");
      flush({ keepalive: true });
    } else {
      record("visibility_visible");
    }
  });
  window.addEventListener("pagehide", () => {
    if (navigator.onLine === false) {
      // Kept on the device; the next page of this session sends them.
      leaving = true;
      return;
    }
    flush({ keepalive: true });
    leaving = true;
    // A keepalive send outlives the page, but its answer reaches no one: the
    // events are taken as sent, or the next page would send them again.
    // (Losing a batch to a failure at that very moment beats counting every
    // event twice after each reload.)
    queue = [];
    store(sessionId, queue);
  });
  window.addEventListener("pageshow", (event) => {
    if (!event.persisted) return;
    // Back from the browser's page cache: carry on where the page left off.
    leaving = false;
    queue = load(sessionId);
    for (const kept of queue) kept.n = next++;
    inFlight.clear();
  });
  document.addEventListener("copy", () => record("copy"));
  document.addEventListener("paste", (event) => {
    const text = event.clipboardData?.getData("text/plain") ?? "";
    record("paste", { length: characters(text) });
  });
  window.addEventListener("offline", () => record("offline"));
  window.addEventListener("online", () => {
    record("online");
    flush({ force: true });
  });

  const prompt = document.getElementById("exam-fullscreen");
  const enter = document.getElementById("exam-fullscreen-enter");
  const fullscreenSupported = Boolean(document.documentElement.requestFullscreen);
  function showPrompt() {
    if (prompt) prompt.hidden = !requireFullscreen || !fullscreenSupported || Boolean(document.fullscreenElement);
  }
  let wasFullscreen = Boolean(document.fullscreenElement);
  document.addEventListener("fullscreenchange", () => {
    const now = Boolean(document.fullscreenElement);
    if (now !== wasFullscreen) record(now ? "fullscreen_enter" : "fullscreen_exit");
    if (!now && wasFullscreen && requireFullscreen) {
      // The prompt appears silently; a screen reader user hears why.
      announce("You left full screen. This exam is taken in full screen: use the Return to full screen button.");
    }
    wasFullscreen = now;
    showPrompt();
  });
  enter?.addEventListener("click", async () => {
    try {
      // Needs the student's click: browsers allow full screen only on a gesture.
      await document.documentElement.requestFullscreen({ navigationUI: "hide" });
    } catch {
      // Refused (a browser setting): the prompt stays, and says what to do.
    }
  });
  showPrompt();

  window.setInterval(() => {
    if (navigator.onLine !== false) flush();
  }, FLUSH_EVERY_MS);
  if (queue.length) flush();

  return {
    flush: () => flush({ force: true }),
    record,
  };
}
