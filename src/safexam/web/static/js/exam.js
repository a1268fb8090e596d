// The exam page: wires the answers to the outbox, the navigator and the
// status line, the server-owned timer, integrity capture, and the review
// before submit.

import { announce } from "./announce.js";
import { startLive } from "./announcements.js";
import {
  hasContent,
  isAnswerField,
  isTyped,
  parseNumber,
  readAnswer,
  writeAnswer,
} from "./answers.js";
import { startIntegrity } from "./integrity.js";
import { Outbox } from "./outbox.js";
import { startTimer } from "./timer.js";

// A pause in typing this long saves what was typed; leaving the field saves at once.
const TYPING_PAUSE_MS = 600;

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
// What the server holds per question (as rendered, then as acknowledged), and
// the last answer handed to the outbox, so an unchanged field sends nothing.
const serverAnswers = new Map(sections.map((s) => [s.dataset.questionId, readAnswer(s)]));
const lastQueued = new Map(
  sections.map((s) => [s.dataset.questionId, JSON.stringify(readAnswer(s))]),
);
// The starter code a coding question showed before anything was saved.
const starters = new Map(
  sections
    .filter((s) => s.dataset.kind === "coding" && s.dataset.clientSeq === "0")
    .map((s) => [s.dataset.questionId, s.querySelector('textarea[name="source"]').value]),
);
const typing = new Map(); // question id -> timer of a save waiting for a pause
const rejected = new Map(); // question id -> the server's reason (422)
let closed = false;

const outbox = new Outbox({
  sessionId,
  csrf,
  seqs,
  onChange: render,
  onSaved(questionId, answer) {
    serverAnswers.set(questionId, answer);
    // A later answer was accepted: an earlier refusal no longer applies.
    rejected.delete(questionId);
  },
  onRejected(questionId, message) {
    // The API's words, as a sentence.
    const reason = message ? message.replace(/\.?$/, ".") : "";
    rejected.set(questionId, `Not saved: ${reason || "the server did not accept this answer."}`);
    const n = sections.indexOf(byId.get(questionId)) + 1;
    announce(`Question ${n}: ${rejected.get(questionId)}`);
    render();
  },
  onClosed() {
    showClosed("This exam has ended, so answers can no longer be changed. Every answer saved before the end is kept.");
  },
  onSignedOut() {
    announce("You are signed out. Your answers are kept on this device: sign in again to save them.", { urgent: true });
  },
  onRefused() {
    announce("Your answers cannot be saved from this page. Reload it; your answers are kept on this device.", { urgent: true });
  },
});

function plural(count, one, many) {
  return count === 1 ? one : many;
}

function answers(count) {
  return `${count} ${plural(count, "answer", "answers")}`;
}

// ------------------------------------------------------------------ flags

const flagsKey = `safexam:flags:${sessionId}`;

function loadFlags() {
  try {
    return new Set(JSON.parse(window.localStorage.getItem(flagsKey) || "[]"));
  } catch {
    return new Set();
  }
}

function saveFlags() {
  const flagged = sections
    .filter((section) => isFlagged(section))
    .map((section) => section.dataset.questionId);
  try {
    window.localStorage.setItem(flagsKey, JSON.stringify(flagged));
  } catch {
    // Storage refused (a private window): the flags last as long as the page.
  }
}

function isFlagged(section) {
  return section.querySelector("[data-flag]").getAttribute("aria-pressed") === "true";
}

// ------------------------------------------------------------------ state

// The state of a question as the navigator shows it, and the words beside its field.
function stateOf(section) {
  const id = section.dataset.questionId;
  const kind = section.dataset.kind;
  const current = readAnswer(section);
  const held = serverAnswers.get(id);
  if (kind === "numeric" && current === null) {
    const parsed = parseNumber(section.querySelector('input[name="value"]').value);
    const kept = hasContent(kind, held) ? ` Your saved answer, ${held.value}, still counts.` : "";
    if (parsed.problem) return { state: "problem", problem: parsed.problem + kept };
    if (kept) {
      return {
        state: "problem",
        problem: `An empty answer cannot be saved.${kept} Type a number to change it.`,
      };
    }
  }
  if (rejected.has(id)) return { state: "problem", problem: rejected.get(id) };
  const note =
    kind === "numeric" && current && parseNumber(section.querySelector('input[name="value"]').value).comma
      ? `Read as ${current.value}.`
      : "";
  if (outbox.isPending(id) || typing.has(id)) return { state: "unsaved", note };
  const answered = hasContent(kind, current, starters.get(id));
  return { state: answered ? "answered" : "unanswered", note };
}

const NAV_LABELS = {
  answered: "Answered",
  unsaved: "Not saved yet",
  unanswered: "Not answered",
  problem: "Not saved: check it",
};

// The status line's words, and a link when there is something to do.
function statusLine() {
  const pending = outbox.pending.size;
  if (outbox.stopped === "signed-out") {
    return {
      state: "problem",
      text: `Signed out: ${answers(pending)} kept on this device. `,
      link: ["Sign in again", `/sign-in?next=${encodeURIComponent(window.location.pathname)}`],
      after: " to save them.",
    };
  }
  if (outbox.stopped === "refused") {
    return {
      state: "problem",
      text: `Not saved: the server refused this page's answers. ${answers(pending)} kept on this device. `,
      link: ["Reload the page", window.location.pathname],
      after: ".",
    };
  }
  const device = outbox.storageFailed
    ? "in this page (this browser keeps nothing on the device)"
    : "on this device";
  if (pending && outbox.offline) {
    // "Kept on this device" only once they are on disk.
    const kept = outbox.storageFailed || outbox.allOnDisk();
    const text = kept ? `Offline: ${answers(pending)} kept ${device}.` : "Offline: keeping your answers on this device…";
    return { state: "offline", text };
  }
  if (pending && !outbox.sending && outbox.attempt > 0) {
    return {
      state: "offline",
      text: `Not saved yet, trying again: ${answers(pending)} kept ${device}.`,
    };
  }
  if (pending || typing.size) return { state: "", text: "Saving…" };
  if (outbox.lastSavedAt) {
    return { state: "", text: `Saved ${timeFormat.format(outbox.lastSavedAt)}` };
  }
  return null;
}

let shownStatus = "";

function renderStatus() {
  const line = statusLine();
  const key = JSON.stringify(line);
  // Rebuilt only when it changes: a link replaced between the press and the
  // release of a click would swallow the click.
  if (!line || key === shownStatus) return;
  shownStatus = key;
  saveState.dataset.state = line.state;
  const parts = [line.text];
  if (line.link) {
    const a = document.createElement("a");
    a.textContent = line.link[0];
    a.href = line.link[1];
    parts.push(a, line.after);
  }
  saveState.replaceChildren(...parts);
}

let wasOffline = false;

function render() {
  renderStatus();
  const offline = Boolean(outbox.pending.size && outbox.offline);
  if (offline && !wasOffline) {
    announce("You are offline. Your answers are kept on this device and sent when the connection is back.");
  } else if (wasOffline && !outbox.pending.size) {
    announce("Back online. Every answer is saved.");
  }
  wasOffline = offline && !outbox.stopped;
  sections.forEach((section, index) => {
    const link = document.getElementById(`nav-${index + 1}`);
    const { state, problem = "", note = "" } = stateOf(section);
    const flagged = isFlagged(section);
    link.dataset.state = state;
    link.dataset.flagged = String(flagged);
    link.querySelector(".nav-state").textContent = NAV_LABELS[state];
    link.querySelector(".nav-flag").hidden = !flagged;
    section.querySelector("[data-question-state]").textContent =
      state === "unsaved" ? "Not saved yet" : state === "answered" ? "Saved" : "";
    const field = section.querySelector("[data-problem]");
    if (field.textContent !== (problem || note)) field.textContent = problem || note;
    field.hidden = !(problem || note);
    field.classList.toggle("is-problem", Boolean(problem));
  });
}

// ------------------------------------------------------------------ saving

// Hand the question's answer to the outbox now (unless nothing changed).
function commit(section) {
  const id = section.dataset.questionId;
  window.clearTimeout(typing.get(id));
  typing.delete(id);
  const answer = readAnswer(section);
  const key = JSON.stringify(answer);
  if (answer === null || key === lastQueued.get(id)) {
    render();
    return;
  }
  lastQueued.set(id, key);
  rejected.delete(id);
  outbox.put(id, answer);
}

function commitAll() {
  for (const id of [...typing.keys()]) commit(byId.get(id));
}

function onInput(event) {
  const section = event.target.closest("section.question");
  if (!section || closed || !isAnswerField(event.target)) return;
  if (event.type === "input" && isTyped(event.target)) {
    const id = section.dataset.questionId;
    window.clearTimeout(typing.get(id));
    typing.set(id, window.setTimeout(() => commit(section), TYPING_PAUSE_MS));
    render();
  } else if (event.type === "change") {
    commit(section);
  }
}

// ------------------------------------------------------------------ moving around

function goTo(index) {
  const section = sections[Math.max(0, Math.min(sections.length - 1, index))];
  const heading = section.querySelector("h2");
  section.scrollIntoView({ block: "start" });
  heading.focus({ preventScroll: true });
}

// The question the student is in: the one holding the focus, else the first in view.
function currentIndex() {
  const holding = sections.findIndex((section) => section.contains(document.activeElement));
  if (holding >= 0) return holding;
  const visible = sections.findIndex((section) => section.getBoundingClientRect().bottom > 80);
  return visible >= 0 ? visible : 0;
}

function isEditing(target) {
  return isTyped(target) || (target instanceof HTMLElement && target.isContentEditable);
}

// Alt+Shift+N and Alt+Shift+P: the next and the previous question. Never
// taken from a text field or the editor (where they may type a character),
// and every other key goes where it always goes.
function onShortcut(event) {
  if (!event.altKey || !event.shiftKey || event.ctrlKey || event.metaKey || closed) return;
  if (event.code !== "KeyN" && event.code !== "KeyP") return;
  if (isEditing(event.target) || document.querySelector("dialog[open]")) return;
  event.preventDefault();
  goTo(currentIndex() + (event.code === "KeyN" ? 1 : -1));
}

function setUpNavigator() {
  sections.forEach((section, index) => {
    document.getElementById(`nav-${index + 1}`).addEventListener("click", (event) => {
      event.preventDefault();
      goTo(index);
    });
  });
  document.addEventListener("keydown", onShortcut);
}

// ------------------------------------------------------------------ the end

function showClosed(message) {
  if (closed) return;
  closed = true;
  outbox.clear();
  for (const timer of typing.values()) window.clearTimeout(timer);
  typing.clear();
  document.getElementById("exam-review-dialog").close();
  // Nothing on the page can change an answer any more: the questions go.
  document.querySelector(".exam-layout").hidden = true;
  document.querySelector(".exam-bar").hidden = true;
  const notice = document.getElementById("exam-closed");
  document.getElementById("exam-closed-text").textContent = message;
  notice.hidden = false;
  notice.focus();
}

async function finishAtDeadline() {
  announce("Time is up. Your exam is being submitted.", { urgent: true });
  commitAll();
  await outbox.send();
  // The server submits the attempt at its deadline; the page shows the outcome.
  showClosed("Your time is up; your exam is being submitted with every answer you saved.");
}

function link(text, index) {
  const a = document.createElement("a");
  a.href = `#question-${index + 1}`;
  a.textContent = text;
  a.addEventListener("click", (event) => {
    event.preventDefault();
    document.getElementById("exam-review-dialog").close();
    goTo(index);
  });
  return a;
}

function reviewList(title, indexes) {
  const wrapper = document.createElement("div");
  const heading = document.createElement("h3");
  heading.textContent = `${title} (${indexes.length})`;
  const list = document.createElement("ul");
  list.className = "review-list";
  for (const index of indexes) {
    const item = document.createElement("li");
    item.append(link(`Question ${index + 1}`, index));
    list.append(item);
  }
  wrapper.append(heading, list);
  return wrapper;
}

function setUpReview() {
  const dialog = document.getElementById("exam-review-dialog");
  const summary = document.getElementById("exam-review-summary");
  const problem = document.getElementById("exam-submit-problem");
  const submit = document.getElementById("exam-submit");
  document.getElementById("exam-review").addEventListener("click", () => {
    commitAll();
    const unanswered = [];
    const flagged = [];
    const unsaved = [];
    sections.forEach((section, index) => {
      const { state } = stateOf(section);
      if (state === "unanswered") unanswered.push(index);
      if (state === "problem") unsaved.push(index);
      if (isFlagged(section)) flagged.push(index);
    });
    const parts = [];
    if (unanswered.length) parts.push(reviewList("Not answered", unanswered));
    if (unsaved.length) parts.push(reviewList("Answers to check (not saved)", unsaved));
    if (flagged.length) parts.push(reviewList("Flagged for review", flagged));
    if (!parts.length) {
      const p = document.createElement("p");
      p.textContent = `All ${sections.length} questions are answered, and none is flagged.`;
      parts.push(p);
    }
    if (outbox.pending.size) {
      const p = document.createElement("p");
      p.textContent = `${answers(outbox.pending.size)} not saved yet: they are sent before the exam is submitted.`;
      parts.push(p);
    }
    const last = document.createElement("p");
    last.textContent = "Once submitted, your answers cannot be changed.";
    parts.push(last);
    summary.replaceChildren(...parts);
    problem.hidden = true;
    dialog.showModal();
  });
  document.getElementById("exam-review-close").addEventListener("click", () => dialog.close());
  submit.addEventListener("click", async () => {
    submit.disabled = true;
    submit.textContent = "Submitting…";
    try {
      await submitExam(problem);
    } finally {
      submit.disabled = false;
      submit.textContent = "Submit exam";
    }
  });
}

function say(problem, text) {
  problem.textContent = text;
  problem.hidden = false;
}

async function submitExam(problem) {
  problem.hidden = true;
  commitAll();
  const saved = await outbox.flush();
  if (outbox.stopped === "closed") return;
  if (outbox.stopped === "signed-out") {
    say(problem, "You are signed out, so the exam was not submitted. Your answers are kept on this device: sign in again, then submit.");
    return;
  }
  if (!saved) {
    const count = answers(outbox.pending.size);
    say(
      problem,
      outbox.offline
        ? `You are offline: ${count} not saved yet, so the exam was not submitted. They are kept on this device; submit again when you are back online.`
        : `${count} could not be saved yet, so the exam was not submitted. They are kept on this device; try again in a moment.`,
    );
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
    say(problem, "The exam could not be submitted: the server cannot be reached. Your answers are saved; try again.");
    return;
  }
  if (response.ok || response.status === 409) {
    // The server now shows the submitted exam.
    window.location.reload();
    return;
  }
  if (response.status === 401) {
    say(problem, "You are signed out, so the exam was not submitted. Sign in again, then submit.");
    return;
  }
  say(problem, "The exam could not be submitted. Your answers are saved; try again in a moment.");
}

// ------------------------------------------------------------------ start

async function main() {
  const kept = await outbox.open();
  // Answers kept on this device and not yet acknowledged are newer than the
  // page the server rendered: show them, then send them.
  for (const record of kept) {
    const section = byId.get(record.questionId);
    if (!section) continue;
    writeAnswer(section, record.answer);
    lastQueued.set(record.questionId, JSON.stringify(record.answer));
  }
  if (kept.length) announce(`${answers(kept.length)} kept on this device restored; sending them now.`);
  form.addEventListener("input", onInput);
  form.addEventListener("change", onInput);
  form.addEventListener("submit", (event) => event.preventDefault());

  const flags = loadFlags();
  for (const section of sections) {
    const button = section.querySelector("[data-flag]");
    button.setAttribute("aria-pressed", String(flags.has(section.dataset.questionId)));
    button.addEventListener("click", () => {
      button.setAttribute("aria-pressed", String(!isFlagged(section)));
      saveFlags();
      render();
    });
  }
  setUpNavigator();

  const hide = () => {
    commitAll();
    outbox.flushOnHide();
  };
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") hide();
    else outbox.send();
  });
  window.addEventListener("pagehide", hide);
  // Offline with unsaved answers, a page that is left cannot load again until
  // the connection is back (the answers stay on the device either way).
  window.addEventListener("beforeunload", (event) => {
    if (outbox.offline && outbox.pending.size && !closed) event.preventDefault();
  });
  render();
  outbox.send();

  startIntegrity({ sessionId, csrf });
  startLive({ sessionId, timer: startTimer({ onDeadline: finishAtDeadline }) });
  setUpReview();
  if (form.dataset.codingModule && form.querySelector('section[data-kind="coding"]')) {
    mountWhenNear();
  }
}

// The editor is most of the page's script; a student reading the first
// questions should not wait for it. It loads once a coding question comes
// within a screen of the viewport (scrolling, the navigator, the keyboard
// shortcuts all bring it there first), so it is ready before it is reached.
function mountWhenNear() {
  if (!("IntersectionObserver" in window)) {
    mountWorkspaces();
    return;
  }
  const observer = new IntersectionObserver(
    (entries) => {
      if (!entries.some((entry) => entry.isIntersecting)) return;
      observer.disconnect();
      mountWorkspaces();
    },
    { rootMargin: "100% 0px" },
  );
  for (const section of form.querySelectorAll('section[data-kind="coding"]')) {
    observer.observe(section);
  }
}

// The editor is loaded only when a coding question is near. Until it loads
// (or when the connection drops first) the plain text area takes the code,
// and the next time the page is online it tries again.
const mounted = new Set();

async function mountWorkspaces() {
  try {
    const coding = await import(form.dataset.codingModule);
    for (const section of form.querySelectorAll('section[data-kind="coding"]')) {
      if (mounted.has(section)) continue;
      await coding.mount(section, { sessionId, csrf });
      mounted.add(section);
    }
  } catch {
    window.addEventListener("online", mountWorkspaces, { once: true });
  }
}

main();
