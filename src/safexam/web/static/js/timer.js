// The timer the server owns. The page learns how long is left from the
// server (never from the computer's clock, which a student may change) and
// counts down on the monotonic clock of performance.now(). It checks with the
// server now and then, when the page comes back into view (a laptop that slept
// may have stopped the monotonic clock too) and when the computer's clock
// jumps, and takes a changed deadline (an extension) from it.
//
// The ticking time is plain text, not a live region: a screen reader reads it
// when the student goes to it, and hears only the warnings at 10, 5 and 1
// minutes, once each, in the polite announcer.

import { announce } from "./announce.js";

const WARNINGS = [10 * 60, 5 * 60, 60];
// A warning fires again only when an extension moves it this far into the
// future, so a re-sync that corrects a second of drift never repeats one.
const REARM_MARGIN_S = 30;
const RESYNC_EVERY_MS = 5 * 60 * 1000;
// The first check comes a little after load, spread out so that a room of
// students opening the exam together do not all ask at the same moment.
const FIRST_RESYNC_MS = 20_000;
const FIRST_RESYNC_SPREAD_MS = 20_000;
const MIN_RESYNC_GAP_MS = 5_000;
const WARNING_RESYNC_SPREAD_MS = 10_000;
// A sample is the round trip of one request; the server's clock was read
// somewhere inside it, so a short trip pins the offset closely.
const MAX_SAMPLES = 3;
const GOOD_ROUND_TRIP_MS = 300;
// The wall clock moving this much more or less than the monotonic clock
// between two ticks means a clock change or a sleep: ask the server.
const JUMP_MS = 2_000;
// A deadline that moves by more than this is news worth telling the student.
const EXTENSION_NOTICE_MS = 30_000;

function clock(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${rest}` : `${minutes}:${rest}`;
}

function words(seconds) {
  const minutes = Math.max(1, Math.round(seconds / 60));
  if (minutes < 60) return minutes === 1 ? "1 minute" : `${minutes} minutes`;
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  const h = hours === 1 ? "1 hour" : `${hours} hours`;
  if (!rest) return h;
  return `${h} ${rest === 1 ? "1 minute" : `${rest} minutes`}`;
}

// ISO moments from the server carry microseconds; Date.parse wants at most
// milliseconds to be sure of the result in every browser.
function parseMoment(text) {
  return Date.parse(text.replace(/(\.\d{3})\d+/, "$1"));
}

// Where on the monotonic clock the page's own response was made: the server
// read its clock while answering, between the request and the response.
function pageAnchor() {
  const navigation = performance.getEntriesByType?.("navigation")?.[0];
  if (navigation && navigation.responseStart > 0) {
    return (navigation.requestStart + navigation.responseStart) / 2;
  }
  return performance.now();
}

function storageKey(sessionId) {
  return `safexam:timer-hidden:${sessionId}`;
}

function readHidden(sessionId) {
  try {
    return window.localStorage.getItem(storageKey(sessionId)) === "1";
  } catch {
    return false;
  }
}

function writeHidden(sessionId, hidden) {
  try {
    if (hidden) window.localStorage.setItem(storageKey(sessionId), "1");
    else window.localStorage.removeItem(storageKey(sessionId));
  } catch {
    // Storage refused (private mode, quota): the choice lasts for this page only.
  }
}

function setUpToggle(sessionId, onChange) {
  const toggle = document.getElementById("exam-timer-toggle");
  const timer = document.getElementById("exam-timer");
  if (!toggle || !timer) return () => false;
  let hidden = readHidden(sessionId);
  const apply = () => {
    timer.hidden = hidden;
    toggle.setAttribute("aria-expanded", String(!hidden));
    toggle.textContent = hidden ? "Show timer" : "Hide timer";
    onChange(hidden);
  };
  toggle.addEventListener("click", () => {
    hidden = !hidden;
    writeHidden(sessionId, hidden);
    apply();
  });
  toggle.hidden = false;
  apply();
  return () => hidden;
}

export function startTimer({ onDeadline, onEnded = () => window.location.reload() }) {
  const form = document.getElementById("exam");
  const sessionId = form.dataset.sessionId;
  const display = document.getElementById("exam-remaining");
  const warningLine = document.getElementById("exam-timer-warning");
  // Milliseconds when the template gives them (deadline minus the server's
  // time, both read in one request), else whole seconds.
  const givenMs = display.dataset.remainingMs;
  const remainingMs =
    givenMs !== undefined ? Number(givenMs) : Number(display.dataset.remainingSeconds) * 1000;
  let deadline = pageAnchor() + remainingMs;
  const warned = new Set(WARNINGS.filter((w) => remainingMs / 1000 <= w));
  let done = false;
  let timeout = null;
  let lastTick = null;
  let lastResync = performance.now();
  let resyncing = null;

  const isHidden = setUpToggle(sessionId, (hidden) => {
    if (!hidden && warningLine) warningLine.hidden = true;
  });

  function left() {
    return (deadline - performance.now()) / 1000;
  }

  function warn(seconds) {
    const text = `${words(seconds)} left.`;
    announce(text);
    // A student who hid the timer still sees the warning, not only hears it.
    if (warningLine && isHidden()) {
      warningLine.textContent = text;
      warningLine.hidden = false;
    }
  }

  function schedule() {
    window.clearTimeout(timeout);
    if (done) return;
    // Wake just after the shown second changes.
    const ms = deadline - performance.now();
    const wait = ms > 0 ? (ms % 1000) + 5 : 5;
    timeout = window.setTimeout(tick, wait);
  }

  function tick() {
    const now = performance.now();
    const wall = Date.now();
    if (lastTick) {
      const monotonic = now - lastTick.now;
      const drift = wall - lastTick.wall - monotonic;
      // The computer's clock changed, or the computer slept and the monotonic
      // clock may have slept with it: the server says how long is really left.
      if (Math.abs(drift) > JUMP_MS) resync({ force: true });
      else if (now - lastResync > RESYNC_EVERY_MS) resync();
    }
    lastTick = { now, wall };
    const seconds = left();
    display.textContent = clock(seconds);
    display.dataset.low = seconds <= 60 ? "minute" : seconds <= 300 ? "five" : "";
    // After a sleep several warnings may fall due at once: say the latest only.
    const due = WARNINGS.filter((w) => seconds <= w && !warned.has(w));
    if (due.length) {
      for (const warning of due) warned.add(warning);
      if (seconds > 0) warn(Math.min(...due));
      // A late extension is caught before the bell, not after it; spread
      // out, as a room of students with one closing time cross it together.
      window.setTimeout(() => resync(), Math.random() * WARNING_RESYNC_SPREAD_MS);
    }
    if (seconds <= 0 && !done) {
      done = true;
      onDeadline();
      return;
    }
    schedule();
  }

  // Count down to a new deadline (a moment on the monotonic clock).
  function setDeadline(newDeadline) {
    const moved = newDeadline - deadline;
    deadline = newDeadline;
    const seconds = left();
    for (const warning of WARNINGS) {
      if (seconds > warning + REARM_MARGIN_S) warned.delete(warning);
      else if (seconds <= warning) warned.add(warning);
    }
    if (moved > EXTENSION_NOTICE_MS && seconds > 0) {
      announce(`Your time was extended. ${words(seconds)} left.`);
    }
    if (!done) tick();
  }

  async function sample() {
    const started = performance.now();
    const response = await fetch(`/api/v1/sessions/${sessionId}`, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json" },
    });
    const arrived = performance.now();
    if (!response.ok) throw new Error(`session read: ${response.status}`);
    const body = await response.json();
    return {
      roundTrip: arrived - started,
      status: body.status,
      deadline: (started + arrived) / 2 + parseMoment(body.deadline_at) - parseMoment(body.server_time),
    };
  }

  // Ask the server for the deadline; keep the sample with the shortest trip.
  async function resyncNow() {
    lastResync = performance.now();
    let best = null;
    for (let i = 0; i < MAX_SAMPLES; i += 1) {
      let taken;
      try {
        taken = await sample();
      } catch {
        break; // offline or refused: keep counting on what we know
      }
      if (taken.status !== "active") {
        done = true;
        window.clearTimeout(timeout);
        onEnded(taken.status);
        return;
      }
      if (!best || taken.roundTrip < best.roundTrip) best = taken;
      if (taken.roundTrip <= GOOD_ROUND_TRIP_MS) break;
    }
    if (best && !done) {
      display.dataset.synced = String(Math.round(best.roundTrip));
      setDeadline(best.deadline);
    }
  }

  function resync({ force = false } = {}) {
    if (done || resyncing) return resyncing;
    if (!force && performance.now() - lastResync < MIN_RESYNC_GAP_MS) return null;
    resyncing = resyncNow().finally(() => {
      resyncing = null;
    });
    return resyncing;
  }

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") resync({ force: true });
  });
  window.addEventListener("online", () => resync({ force: true }));
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) resync({ force: true });
  });
  window.setTimeout(
    () => resync(),
    FIRST_RESYNC_MS + Math.random() * FIRST_RESYNC_SPREAD_MS,
  );

  tick();

  return {
    // A new deadline from the server (an extension), as seconds left now.
    setRemaining(seconds) {
      setDeadline(performance.now() + seconds * 1000);
    },
    // Ask the server now; resolves when the answer is applied.
    resync() {
      return resync({ force: true }) ?? Promise.resolve();
    },
  };
}
