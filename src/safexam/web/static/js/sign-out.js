// Signing out leaves nothing of the session on this device: the service
// worker's caches and its registration, and the exam outbox (answers kept in
// IndexedDB). Answers still waiting for the server would be lost with it, so
// their owner is asked first.
import { forgetAnswers, keptAnswers } from "./outbox.js";

const SIGN_OUT = new Set(["/sign-out", "/sign-out-everywhere"]);

async function forgetEverything() {
  if ("serviceWorker" in navigator) {
    const registrations = await navigator.serviceWorker.getRegistrations();
    await Promise.all(registrations.map((registration) => registration.unregister()));
  }
  if ("caches" in window) {
    const names = await caches.keys();
    await Promise.all(names.map((name) => caches.delete(name)));
  }
  await forgetAnswers();
}

document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement)) return;
  if (!SIGN_OUT.has(new URL(form.action, window.location.href).pathname)) return;
  event.preventDefault();
  let kept = 0;
  try {
    kept = await keptAnswers();
  } catch {
    // No IndexedDB here: nothing was kept.
  }
  if (kept > 0) {
    const what = kept === 1 ? "1 answer has" : `${kept} answers have`;
    const them = kept === 1 ? "it" : "them";
    const sure = window.confirm(
      `${what} not reached the server yet. Signing out deletes ${them} from this device. Sign out anyway?`,
    );
    if (!sure) return;
  }
  try {
    await forgetEverything();
  } catch {
    // Signing out matters more than tidying up: go on.
  }
  // submit() sends the form without a second submit event.
  form.submit();
});
