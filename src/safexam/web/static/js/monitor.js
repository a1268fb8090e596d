// The live exam monitor. The exam's event stream opens with the roster (every
// student's state, read from the database) and then sends small deltas as
// students start, save, report integrity events and finish. Rows are changed
// in place, once per animation frame, and only the cells that changed: with
// 500 students saving every few seconds nothing is rebuilt per event. States
// that change with time alone (idle, time left) are derived here on the
// server's clock. A reconnect gets the roster again.
//
// Screen readers hear one polite summary of the counts, at most every
// SUMMARY_EVERY_MS and only when it changed, never a row's every change.

const SUMMARY_EVERY_MS = 15_000;
const TICK_MS = 5_000;
const RESORT_EVERY_MS = 5_000;
const STATE_ORDER = ["offline", "idle", "active", "not_started", "submitted", "auto_submitted"];

const table = document.getElementById("monitor-table");
const tbody = document.getElementById("monitor-rows");
const summary = document.getElementById("monitor-summary");
const connection = document.getElementById("monitor-connection");
const shown = document.getElementById("monitor-shown");
const filter = document.getElementById("monitor-filter");
const sorter = document.getElementById("monitor-sort");
const panel = document.getElementById("monitor-timeline");
const timelineList = document.getElementById("timeline-list");
const timelineTitle = document.getElementById("timeline-title");
const timelineStatus = document.getElementById("timeline-status");
const LABELS = JSON.parse(table.dataset.states);

const students = new Map(); // key -> student
const bySession = new Map(); // session id -> key
const rows = new Map(); // key -> <tr>
const dirty = new Set();
let flagKinds = new Set();
let idleAfter = 300;
let offset = 0; // server clock minus this computer's
let frame = 0;
let sortDue = false;
let lastSort = 0;
// As the server rendered it: the same words are not announced again.
let lastSummary = summary.textContent.replace(/\s+/g, " ").trim();
let lastSummaryAt = 0;
let summaryTimer = 0;
let openSession = null;

const timeFormat = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});

function moment(text) {
  return text ? Date.parse(text.replace(/(\.\d{3})\d+/, "$1")) : null;
}

function now() {
  return Date.now() + offset;
}

function words(key) {
  return key.replaceAll("_", " ");
}

// ------------------------------------------------------------------ the model

function fromRoster(s) {
  return {
    key: s.user_id || s.email,
    user_id: s.user_id,
    email: s.email,
    name: s.name || s.email,
    session_id: s.session_id,
    status: s.status,
    started_at: moment(s.started_at),
    deadline_at: moment(s.deadline_at),
    submitted_at: moment(s.submitted_at),
    last_save_at: moment(s.last_save_at),
    last_event_at: moment(s.last_event_at),
    answered: s.answered,
    question_count: s.question_count,
    flags: { ...s.flags },
    connectivity: s.connectivity,
    pages: s.pages,
  };
}

// The same rules as sessions/monitor.py derive_state.
function stateOf(s, at = now()) {
  if (!s.session_id) return "not_started";
  if (s.status === "expired") return "auto_submitted";
  if (s.status === "submitted" || s.status === "graded") {
    return s.status === "graded" && s.submitted_at === s.deadline_at ? "auto_submitted" : "submitted";
  }
  if (s.pages === 0 || s.connectivity === "offline") return "offline";
  const last = Math.max(s.started_at || 0, s.last_save_at || 0, s.last_event_at || 0);
  if (last && at - last >= idleAfter * 1000) return "idle";
  return "active";
}

function remaining(s, at = now()) {
  if (s.status !== "active" || !s.deadline_at) return null;
  return Math.max(0, (s.deadline_at - at) / 1000);
}

function flagTotal(s) {
  return Object.values(s.flags).reduce((a, b) => a + b, 0);
}

function applyRoster(roster) {
  offset = moment(roster.server_time) - Date.now();
  idleAfter = roster.idle_after_seconds;
  flagKinds = new Set(roster.flag_kinds);
  const seen = new Set();
  for (const raw of roster.students) {
    const s = fromRoster(raw);
    students.set(s.key, s);
    if (s.session_id) bySession.set(s.session_id, s.key);
    seen.add(s.key);
    dirty.add(s.key);
  }
  for (const key of [...students.keys()]) {
    if (!seen.has(key)) {
      students.delete(key);
      rows.get(key)?.remove();
      rows.delete(key);
    }
  }
  sortDue = true;
  schedule();
  syncChoices();
}

function apply(delta) {
  let key = delta.session ? bySession.get(delta.session) : undefined;
  if (delta.kind === "start") {
    key = [...students.values()].find((s) => s.user_id === delta.user)?.key;
    if (!key) return; // not enrolled by user id yet: the next roster shows them
    const s = students.get(key);
    Object.assign(s, {
      session_id: delta.session,
      status: "active",
      started_at: moment(delta.started_at),
      deadline_at: moment(delta.deadline_at),
      submitted_at: null,
      last_save_at: null,
      last_event_at: null,
      answered: 0,
      question_count: delta.question_count || 0,
      flags: {},
      connectivity: null,
    });
    bySession.set(delta.session, key);
    syncChoices();
  }
  const s = key && students.get(key);
  if (!s) return;
  const at = moment(delta.at);
  switch (delta.kind) {
    case "save":
      s.last_save_at = Math.max(s.last_save_at || 0, at);
      if (delta.first) s.answered = Math.min(s.answered + 1, s.question_count || Infinity);
      break;
    case "event":
      s.last_event_at = Math.max(s.last_event_at || 0, at);
      for (const [kind, n] of Object.entries(delta.events || {})) {
        if (flagKinds.has(kind)) s.flags[kind] = (s.flags[kind] || 0) + n;
      }
      if (delta.connectivity) s.connectivity = delta.connectivity;
      break;
    case "submit":
    case "expire":
      s.status = delta.status;
      s.submitted_at = at;
      syncChoices();
      break;
    case "extend":
      s.deadline_at = moment(delta.deadline_at);
      break;
    case "online":
    case "offline":
      s.pages = delta.pages;
      break;
    default:
      break;
  }
  dirty.add(key);
  if (delta.session && delta.session === openSession) addTimelineItem(timelineItem(delta));
  schedule();
}

// ------------------------------------------------------------------ the table

function clock(seconds) {
  if (seconds === null) return "–";
  if (seconds <= 0) return "Time up";
  const minutes = Math.ceil(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

function flagsText(s) {
  const parts = Object.entries(s.flags)
    .sort()
    .map(([kind, n]) => `${words(kind)} ${n}`);
  return parts.length ? parts.join(", ") : "None";
}

function stateText(s, state) {
  if (state !== "idle") return LABELS[state];
  const last = Math.max(s.started_at || 0, s.last_save_at || 0, s.last_event_at || 0);
  const minutes = Math.floor((now() - last) / 60000);
  return `Idle for ${minutes} min`;
}

function createRow(s) {
  const tr = document.createElement("tr");
  tr.dataset.key = s.key;
  const th = document.createElement("th");
  th.scope = "row";
  tr.append(th);
  for (const cell of ["state", "remaining", "last_save", "answered", "flags"]) {
    const td = document.createElement("td");
    td.dataset.cell = cell;
    if (cell === "remaining" || cell === "answered") td.className = "num";
    tr.append(td);
  }
  tr.cells[1].append(Object.assign(document.createElement("span"), { className: "state-badge" }));
  tbody.append(tr);
  return tr;
}

function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

function renderName(tr, s) {
  const th = tr.cells[0];
  if (th.dataset.session === (s.session_id || "")) return;
  th.dataset.session = s.session_id || "";
  const email = Object.assign(document.createElement("span"), {
    className: "fine monitor-email",
    textContent: s.email,
  });
  if (s.session_id) {
    const button = Object.assign(document.createElement("button"), {
      type: "button",
      className: "link-button",
      textContent: s.name,
    });
    button.dataset.timelineFor = s.session_id;
    th.replaceChildren(button, email);
  } else {
    th.replaceChildren(s.name, email);
  }
}

function renderRow(key, at) {
  const s = students.get(key);
  if (!s) return;
  let tr = rows.get(key);
  if (!tr) {
    tr = tbody.querySelector(`tr[data-key="${CSS.escape(key)}"]`) || createRow(s);
    rows.set(key, tr);
  }
  renderName(tr, s);
  const state = stateOf(s, at);
  if (tr.dataset.state !== state) {
    tr.dataset.state = state;
    sortDue = true;
  }
  if (s.session_id) tr.dataset.sessionId = s.session_id;
  tr.hidden = Boolean(filter.value) && filter.value !== state;
  setText(tr.cells[1].firstElementChild || tr.cells[1], stateText(s, state));
  setText(tr.cells[2], clock(remaining(s, at)));
  setText(tr.cells[3], s.last_save_at ? timeFormat.format(new Date(s.last_save_at)) : "Never");
  setText(tr.cells[4], s.session_id ? `${s.answered} of ${s.question_count}` : "–");
  setText(tr.cells[5], flagsText(s));
}

function sortKey(s, by, at) {
  switch (by) {
    case "state":
      return [STATE_ORDER.indexOf(stateOf(s, at)), s.name.toLowerCase()];
    case "remaining":
      return [remaining(s, at) ?? Infinity, s.name.toLowerCase()];
    case "last_save":
      return [s.session_id ? s.last_save_at || 0 : Infinity, s.name.toLowerCase()];
    case "answered":
      return [s.session_id ? s.answered : Infinity, s.name.toLowerCase()];
    case "flags":
      return [-flagTotal(s), s.name.toLowerCase()];
    default:
      return [s.name.toLowerCase(), s.email];
  }
}

function compare(a, b) {
  for (let i = 0; i < a.length; i += 1) {
    if (a[i] < b[i]) return -1;
    if (a[i] > b[i]) return 1;
  }
  return 0;
}

function resort(at) {
  const by = sorter.value;
  const keyed = [...students.values()].map((s) => [sortKey(s, by, at), s.key]);
  keyed.sort((x, y) => compare(x[0], y[0]));
  const order = keyed.map(([, key]) => rows.get(key)).filter(Boolean);
  // Moved only when the order changed: a focused button keeps its place otherwise.
  const current = [...tbody.rows];
  if (order.length === current.length && order.every((tr, i) => tr === current[i])) return;
  const fragment = document.createDocumentFragment();
  for (const tr of order) fragment.append(tr);
  tbody.append(fragment);
}

function render() {
  frame = 0;
  const at = now();
  for (const key of dirty) renderRow(key, at);
  dirty.clear();
  const t = performance.now();
  // Live sort orders move at most every RESORT_EVERY_MS: rows jumping at
  // every save could not be read, nor clicked.
  const due = sortDue && (sorter.value === "name" || t - lastSort >= RESORT_EVERY_MS);
  if (due) {
    resort(at);
    sortDue = false;
    lastSort = t;
  }
  setText(shown, String(tbody.querySelectorAll("tr:not([hidden])").length));
  queueSummary();
}

function schedule() {
  if (!frame) frame = window.requestAnimationFrame(render);
}

function everything() {
  for (const key of students.keys()) dirty.add(key);
  sortDue = true;
  lastSort = 0;
  schedule();
}

// ------------------------------------------------------------------ the summary

function summaryText() {
  const counts = {};
  const at = now();
  for (const s of students.values()) {
    const state = stateOf(s, at);
    counts[state] = (counts[state] || 0) + 1;
  }
  const parts = Object.keys(LABELS)
    .filter((state) => counts[state])
    .map((state) => `${counts[state]} ${LABELS[state].toLowerCase()}`);
  return `${students.size} students: ${parts.join(", ")}.`;
}

function queueSummary() {
  if (summaryTimer) return;
  const wait = Math.max(0, lastSummaryAt + SUMMARY_EVERY_MS - performance.now());
  summaryTimer = window.setTimeout(() => {
    summaryTimer = 0;
    const text = summaryText();
    if (text === lastSummary) return;
    lastSummary = text;
    lastSummaryAt = performance.now();
    summary.textContent = text;
  }, wait);
}

// ------------------------------------------------------------------ the timeline

const TIMELINE_WORDS = {
  start: "Started",
  save: "Saved an answer",
  submit: "Submitted",
  expire: "Auto-submitted at the deadline",
  extend: "Time extended",
  online: "Exam page connected",
  offline: "Exam page disconnected",
  "session.extend": "Time extended",
  "session.force_submit": "Force-submitted",
};

function timelineItem(delta) {
  if (delta.kind === "event") {
    return { at: delta.at, kind: Object.keys(delta.events || {}).join(", "), detail: "" };
  }
  return { at: delta.at || new Date(now()).toISOString(), kind: delta.kind, detail: "" };
}

function addTimelineItem(item) {
  const li = document.createElement("li");
  const time = document.createElement("time");
  const at = moment(item.at);
  time.dateTime = new Date(at).toISOString();
  time.textContent = timeFormat.format(new Date(at));
  const what = TIMELINE_WORDS[item.kind] || words(item.kind);
  li.append(time, ` ${what}${item.detail ? `: ${item.detail}` : ""}`);
  timelineList.append(li);
}

async function openTimeline(sessionId) {
  const s = students.get(bySession.get(sessionId));
  openSession = sessionId;
  timelineTitle.textContent = `Timeline: ${s ? s.name : "student"}`;
  timelineStatus.textContent = "Loading…";
  timelineList.replaceChildren();
  panel.hidden = false;
  panel.focus();
  for (const id of ["extend_session_id", "force_session_id"]) {
    const choice = document.getElementById(id);
    if (choice && [...choice.options].some((o) => o.value === sessionId)) choice.value = sessionId;
  }
  try {
    const response = await fetch(`${table.dataset.timeline}${sessionId}`, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    if (!response.ok) throw new Error(String(response.status));
    const body = await response.json();
    if (openSession !== sessionId) return;
    timelineList.replaceChildren();
    for (const item of body.items) addTimelineItem(item);
    timelineStatus.textContent = "New events are added as they happen.";
  } catch {
    timelineStatus.textContent = "The timeline could not be loaded. Try again in a moment.";
  }
}

// ------------------------------------------------------------------ the action forms

// The student choices of the action forms follow who is running now.
function syncChoices() {
  const running = [...students.values()]
    .filter((s) => s.session_id && s.status === "active")
    .sort((a, b) => compare([a.name.toLowerCase()], [b.name.toLowerCase()]));
  for (const id of ["extend_session_id", "force_session_id"]) {
    const choice = document.getElementById(id);
    if (!choice) continue;
    const first = choice.options[0];
    const kept = choice.value;
    const options = running.map((s) => new Option(s.name, s.session_id));
    choice.replaceChildren(first, ...options);
    choice.value = running.some((s) => s.session_id === kept) ? kept : "";
  }
}

// ------------------------------------------------------------------ start

function connect() {
  const source = new EventSource(table.dataset.stream);
  source.addEventListener("open", () => {
    connection.dataset.state = "live";
    connection.textContent = "Live: changes appear as they happen.";
  });
  source.addEventListener("error", () => {
    connection.dataset.state = "lost";
    connection.textContent = "Connection lost: reconnecting…";
  });
  source.addEventListener("roster", (event) => applyRoster(JSON.parse(event.data)));
  source.addEventListener("delta", (event) => {
    for (const delta of JSON.parse(event.data)) apply(delta);
  });
}

tbody.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-timeline-for]");
  if (button) openTimeline(button.dataset.timelineFor);
});
document.getElementById("timeline-close").addEventListener("click", () => {
  const back = tbody.querySelector(`button[data-timeline-for="${openSession}"]`);
  openSession = null;
  panel.hidden = true;
  back?.focus();
});
filter.addEventListener("change", everything);
sorter.addEventListener("change", everything);
window.setInterval(everything, TICK_MS);
connect();
