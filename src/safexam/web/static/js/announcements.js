// What reaches the exam page while it is open, over the session's event
// stream (/api/v1/sessions/{id}/events): the educator's announcements, a
// changed deadline (an extension: the timer asks the server and counts down
// to the new one) and the end of the attempt (a force-submit: the timer sees
// it and the page shows the submitted exam). The stream is also how the
// exam's live monitor knows this page is connected.
//
// Announcements already made are in the page as rendered; new ones join the
// list and are read once, politely, through the page's announcer.

import { announce } from "./announce.js";
import { localize } from "./local-time.js";

function parseMoment(text) {
  return text ? Date.parse(text.replace(/(\.\d{3})\d+/, "$1")) : NaN;
}

function item(announcement) {
  const li = document.createElement("li");
  li.dataset.announcementId = announcement.id;
  const time = document.createElement("time");
  const at = new Date(parseMoment(announcement.created_at));
  time.dateTime = at.toISOString();
  time.textContent = at.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  li.append(time, ` ${announcement.message}`);
  return li;
}

export function startLive({ sessionId, timer }) {
  const form = document.getElementById("exam");
  const region = document.getElementById("exam-announcements");
  const list = document.getElementById("exam-announcements-list");
  const known = new Set(
    [...list.querySelectorAll("[data-announcement-id]")].map((li) => li.dataset.announcementId),
  );
  let deadline = parseMoment(form.dataset.deadlineAt);

  function onState(event) {
    const state = JSON.parse(event.data);
    const next = parseMoment(state.deadline_at);
    if (state.status !== "active" || (!Number.isNaN(next) && Math.abs(next - deadline) > 1000)) {
      deadline = next;
      const ends = document.querySelector("#exam-timer time[data-local]");
      if (ends && !Number.isNaN(next)) {
        ends.dateTime = new Date(next).toISOString();
        localize(ends.parentElement);
      }
      // The timer reads the session from the server: a new deadline is counted
      // down at once, and an attempt that ended closes the page.
      timer.resync();
    }
    for (const announcement of state.announcements || []) {
      if (known.has(announcement.id)) continue;
      known.add(announcement.id);
      list.append(item(announcement));
      region.hidden = false;
      announce(`Announcement from your educator: ${announcement.message}`);
    }
  }

  const source = new EventSource(`/api/v1/sessions/${sessionId}/events`);
  source.addEventListener("session", onState);
  window.addEventListener("pagehide", () => source.close());
}
