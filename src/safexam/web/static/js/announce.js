// Messages for screen readers: polite ones wait for a pause in what is being
// read; alerts interrupt. Clearing first makes the same words announced twice.

export function announce(text, { urgent = false } = {}) {
  const region = document.getElementById(urgent ? "exam-alert" : "exam-announcer");
  if (!region) return;
  region.textContent = "";
  window.setTimeout(() => {
    region.textContent = text;
  }, 50);
}
