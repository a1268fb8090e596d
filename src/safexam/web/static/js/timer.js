// The timer the server owns. The page learns how long is left from the
// server (never from the computer's clock, which a student may change) and
// counts down on the monotonic clock of performance.now().

import { announce } from "./announce.js";

const WARNINGS = [10 * 60, 5 * 60, 60];

function clock(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${rest}` : `${minutes}:${rest}`;
}

function words(seconds) {
  const minutes = Math.round(seconds / 60);
  return minutes === 1 ? "1 minute" : `${minutes} minutes`;
}

export function startTimer({ onDeadline }) {
  const display = document.getElementById("exam-remaining");
  const remaining = Number(display.dataset.remainingSeconds);
  // The server computed `remaining` just before it answered: anchor it at the
  // moment the response arrived, on the same clock as performance.now().
  const navigation = performance.getEntriesByType("navigation")[0];
  const anchor = navigation ? navigation.responseStart : performance.now();
  let deadline = anchor + remaining * 1000;
  const warned = new Set(WARNINGS.filter((w) => remaining <= w));
  let done = false;

  function tick() {
    const left = (deadline - performance.now()) / 1000;
    display.textContent = clock(left);
    for (const warning of WARNINGS) {
      if (left <= warning && !warned.has(warning)) {
        warned.add(warning);
        announce(`${words(warning)} left.`);
      }
    }
    if (left <= 0 && !done) {
      done = true;
      onDeadline();
      return;
    }
    window.setTimeout(tick, 1000 - (performance.now() % 1000) + 5);
  }
  tick();

  return {
    // A new deadline from the server (an extension), as seconds left now.
    setRemaining(seconds) {
      deadline = performance.now() + seconds * 1000;
    },
  };
}
