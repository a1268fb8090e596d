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

// "Add a choice" (a test, an answer, a parameter): without scripts the button
// posts the form and the page comes back with one more blank row; here the
// last row is copied in place, blank, with the next index in its names.
function nextIndex(name, index) {
  // Only the row's own index: the first "[n]" of a name such as body.tests[2].stdin.
  return name.replace(/\[\d+\]/, `[${index}]`);
}

function freeChoiceId(rows) {
  const taken = new Set(
    [...rows.querySelectorAll('input[type="hidden"][name$=".id"]')].map((input) => input.value),
  );
  for (const letter of "abcdefghijklmnopqrstuvwxyz") if (!taken.has(letter)) return letter;
  return Math.random().toString(36).slice(2, 8);
}

function addRow(button) {
  const group = button.closest("fieldset, details");
  const rows = group?.querySelector("[data-rows]");
  const last = rows ? [...rows.querySelectorAll("[data-row]")].at(-1) : null;
  if (!rows || !last) return false;
  const index = rows.querySelectorAll("[data-row]").length;
  const row = last.cloneNode(true);
  const choiceId = row.querySelector('input[type="hidden"][name$=".id"]') ? freeChoiceId(rows) : null;
  for (const element of row.querySelectorAll("[name], [id], label[for], [aria-describedby]")) {
    for (const attribute of ["name", "id", "for"]) {
      const value = element.getAttribute(attribute);
      if (value) element.setAttribute(attribute, nextIndex(value, index));
    }
    const value = element.getAttribute("value");
    if (element.tagName === "BUTTON" && value?.startsWith("remove:")) {
      element.setAttribute("value", nextIndex(value, index));
    }
    element.removeAttribute("aria-invalid");
    element.removeAttribute("aria-describedby");
  }
  for (const error of row.querySelectorAll(".field-error")) error.remove();
  for (const field of row.querySelectorAll("input, textarea")) {
    if (field.type === "checkbox" || field.type === "radio") field.checked = false;
    else if (field.type !== "hidden") field.value = "";
  }
  if (choiceId) {
    const label = choiceId.toUpperCase();
    row.querySelector('input[type="hidden"][name$=".id"]').value = choiceId;
    const mark = row.querySelector('input[name="body.answer[]"]');
    if (mark) mark.value = choiceId;
    const head = row.querySelector("th");
    if (head?.firstChild?.nodeType === Node.TEXT_NODE) head.firstChild.textContent = label;
    for (const text of row.querySelectorAll("label, button")) {
      text.innerHTML = text.innerHTML.replace(/choice [A-Z0-9]+/i, `choice ${label}`);
    }
  } else {
    for (const text of row.querySelectorAll("label, button")) {
      // The row's number is the last one its label says ("Input of test 2").
      text.innerHTML = text.innerHTML.replace(/\d+(?!.*\d)/s, String(index + 1));
    }
  }
  last.after(row);
  row.querySelector('input[type="text"], textarea')?.focus();
  return true;
}

for (const button of document.querySelectorAll('button[name="_action"][value="add-row"]')) {
  button.addEventListener("click", (event) => {
    if (addRow(button)) event.preventDefault();
  });
}
