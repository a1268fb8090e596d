// The exam page: wires the answers to the outbox, the navigator and the
// status line, the server-owned timer, integrity capture, and the review
// before submit.

import { announce } from "./announce.js";
import { isAnswered, readAnswer, writeAnswer } from "./answers.js";
import { startIntegrity } from "./integrity.js";
import { Outbox } from "./outbox.js";
import { startTimer } from "./timer.js";

const form = document.getElementById("exam");
const sessionId = form.dataset.sessionId;
const csrf = form.dataset.csrf;
const sections = [...form.querySelectorAll("section.question")];
const byId = new Map(sections.map((section) => [section.dataset.questionId, section]));
const saveState = document.getElementById("exam-save-state");
const timeFormat = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});

const seqs = Object.fromEntries(
  sections.map((section) => [section.dataset.questionId, Number(section.dataset.clientSeq)]),
);

const outbox = new Outbox({ sessionId, csrf, seqs, onChange: render });

function plural(count, one, many) {
  return count === 1 ? one : many;
}

function render() {
  const pending = outbox.pending.size;
  if (pending && outbox.offline) {
    saveState.textContent = `Offline: ${pending} ${plural(pending, "answer", "answers")} kept on this device.`;
  } else if (pending) {
    saveState.textContent = "Saving…";
  } else if (outbox.lastSavedAt) {
    saveState.textContent = `Saved ${timeFormat.format(outbox.lastSavedAt)}`;
  }
  sections.forEach((section, index) => {
    const link = document.getElementById(`nav-${index + 1}`);
    const unsaved = outbox.isPending(section.dataset.questionId);
    const answered = isAnswered(section);
    const state = unsaved ? "unsaved" : answered ? "answered" : "unanswered";
    link.dataset.state = state;
    const flagged = section.querySelector("[data-flag]").getAttribute("aria-pressed") === "true";
    link.dataset.flagged = String(flagged);
    const label = { unsaved: "Not saved yet", answered: "Answered", unanswered: "Not answered" }[state];
    link.querySelector(".nav-state").textContent = flagged ? `${label}, flagged` : label;
    section.querySelector("[data-question-state]").textContent =
      state === "unsaved" ? "Not saved yet" : answered ? "Saved" : "";
  });
}

function onAnswerChanged(event) {
  const section = event.target.closest("section.question");
  if (!section) return;
  const answer = readAnswer(section);
  if (answer !== null) outbox.put(section.dataset.questionId, answer);
  else render();
}

async function main() {
  const kept = await outbox.open();
  // Answers kept on this device and not yet acknowledged are newer than the
  // page the server rendered: show them, then send them.
  for (const record of kept) {
    const section = byId.get(record.questionId);
    if (section) writeAnswer(section, record.answer);
  }
  form.addEventListener("input", onAnswerChanged);
  form.addEventListener("change", onAnswerChanged);
  form.addEventListener("submit", (event) => event.preventDefault());
  for (const button of form.querySelectorAll("[data-flag]")) {
    button.addEventListener("click", () => {
      const pressed = button.getAttribute("aria-pressed") !== "true";
      button.setAttribute("aria-pressed", String(pressed));
      render();
    });
  }
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") outbox.send({ keepalive: true });
  });
  window.addEventListener("pagehide", () => outbox.send({ keepalive: true }));
  render();
  outbox.send();

  startIntegrity({ sessionId, csrf });
  startTimer({ onDeadline: finishAtDeadline });
  setUpReview();
  if (form.dataset.codingModule && form.querySelector('section[data-kind="coding"]')) {
    const coding = await import(form.dataset.codingModule);
    for (const section of form.querySelectorAll('section[data-kind="coding"]')) {
      coding.mount(section, { sessionId, csrf });
    }
  }
}

async function finishAtDeadline() {
  announce("Time is up. Your exam is being submitted.", { urgent: true });
  await outbox.send({ keepalive: true });
  // The server submits the attempt at its deadline; the page shows the outcome.
  window.location.reload();
}

function setUpReview() {
  const dialog = document.getElementById("exam-review-dialog");
  const summary = document.getElementById("exam-review-summary");
  const problem = document.getElementById("exam-submit-problem");
  document.getElementById("exam-review").addEventListener("click", () => {
    const unanswered = [];
    const flagged = [];
    sections.forEach((section, index) => {
      if (!isAnswered(section)) unanswered.push(index + 1);
      if (section.querySelector("[data-flag]").getAttribute("aria-pressed") === "true") {
        flagged.push(index + 1);
      }
    });
    summary.replaceChildren();
    const lines = [];
    if (unanswered.length) lines.push(`Not answered: question ${unanswered.join(", ")}.`);
    if (flagged.length) lines.push(`Flagged for review: question ${flagged.join(", ")}.`);
    if (outbox.pending.size) lines.push(`${outbox.pending.size} ${plural(outbox.pending.size, "answer is", "answers are")} not saved yet; they are sent before submitting.`);
    if (!lines.length) lines.push("Every question is answered.");
    for (const line of lines) {
      const p = document.createElement("p");
      p.textContent = line;
      summary.append(p);
    }
    problem.hidden = true;
    dialog.showModal();
  });
  document.getElementById("exam-review-close").addEventListener("click", () => dialog.close());
  document.getElementById("exam-submit").addEventListener("click", async () => {
    await outbox.send();
    if (outbox.pending.size) {
      problem.textContent = "Some answers are not saved yet, so the exam was not submitted. Check your connection and try again.";
      problem.hidden = false;
      return;
    }
    let response;
    try {
      response = await fetch(`/api/v1/sessions/${sessionId}/submit`, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf },
      });
    } catch {
      problem.textContent = "The exam could not be submitted: the server cannot be reached. Your answers are kept; try again.";
      problem.hidden = false;
      return;
    }
    if (response.ok || response.status === 409) {
      window.location.reload();
      return;
    }
    problem.textContent = "The exam could not be submitted. Your answers are kept; try again in a moment.";
    problem.hidden = false;
  });
}

main();
