// The question form: the prompt's Markdown preview as the author types,
// rendered by the server exactly as the exam page renders it.

const DELAY_MS = 350;

function livePreview(field) {
  const target = document.getElementById(field.dataset.preview);
  const url = field.dataset.previewUrl;
  const token = field.form?.querySelector('input[name="_csrf_token"]')?.value ?? "";
  if (!target || !url) return;
  let timer = 0;
  let latest = 0;
  field.addEventListener("input", () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(async () => {
      const asked = ++latest;
      try {
        const response = await fetch(url, {
          method: "POST",
          headers: { "X-CSRF-Token": token },
          body: new URLSearchParams({ prompt: field.value }),
          credentials: "same-origin",
        });
        // An older answer arriving late must not replace a newer one.
        if (!response.ok || asked !== latest) return;
        target.innerHTML = await response.text();
        target.dataset.rendered = String(asked);
      } catch {
        // Offline for a moment: the next keystroke asks again.
      }
    }, DELAY_MS);
  });
}

for (const field of document.querySelectorAll("textarea[data-preview]")) {
  livePreview(field);
}

// A trial of a coding question: while it runs, fetch the page again and swap
// its results in, until the judge has given every verdict.
async function followTrial(region) {
  const every = Number(region.dataset.trialPoll) || 1000;
  for (;;) {
    await new Promise((resolve) => window.setTimeout(resolve, every));
    let fresh;
    try {
      const response = await fetch(window.location.href, { credentials: "same-origin" });
      if (!response.ok) continue;
      const doc = new DOMParser().parseFromString(await response.text(), "text/html");
      fresh = doc.getElementById("trial");
    } catch {
      continue;
    }
    if (!fresh) return;
    // The status line stays the same element, so that its change is announced.
    const status = region.querySelector('[role="status"]');
    const next = fresh.querySelector('[role="status"]');
    if (status && next) {
      status.textContent = next.textContent.trim();
      next.replaceWith(status);
    }
    region.replaceChildren(...fresh.childNodes);
    if (!fresh.hasAttribute("data-trial-poll")) {
      region.removeAttribute("data-trial-poll");
      return;
    }
  }
}

const trial = document.querySelector("[data-trial-poll]");
if (trial) followTrial(trial);
