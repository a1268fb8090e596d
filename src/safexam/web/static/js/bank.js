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
