// The outbox: every change to an answer is kept in IndexedDB (the latest per
// question, with its client_seq) before it is sent to the autosave route, and
// leaves the outbox only when the server has acknowledged that sequence
// number. A reload, a crash or a lost connection therefore loses nothing: the
// next page load sends whatever is still here.
//
// Which answer wins when two devices (or two tabs) of one student save the
// same question: the server keeps the highest client_seq. When it answers
// applied:false with a higher number, another device saved after this one
// last heard from the server; the change being sent here is the student's
// latest action on this device, so it is sent again numbered above the
// server's, and the last edit wins wherever it was made. An answer restored
// from this device's storage at page load is sent only when it is newer than
// what the server rendered (its number is higher); otherwise the server's
// answer stands and the stored copy is dropped (typically it is the very
// answer a keepalive request delivered as the last page closed).

const DB_NAME = "safexam";
const STORE = "outbox";
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30000;
// Browsers refuse keepalive requests once those in flight from a page hold
// more than 64 KB of body in total; integrity events share that allowance,
// so answers keep to less. A larger answer stays here for the next load.
const KEEPALIVE_BUDGET = 48 * 1024;
// A save the server turns down as older than its own is re-sent this many
// times at most (each time numbered above what the server reported).
const MAX_RESENDS = 3;

const encoder = new TextEncoder();

function openStore() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => {
      request.result.createObjectStore(STORE, { keyPath: ["sessionId", "questionId"] });
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function run(db, mode, work) {
  if (!db) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const transaction = db.transaction(STORE, mode);
    const request = work(transaction.objectStore(STORE));
    transaction.oncomplete = () => resolve(request ? request.result : undefined);
    transaction.onerror = () => reject(transaction.error);
    transaction.onabort = () => reject(transaction.error);
  });
}

// What this device keeps for every attempt, whichever exam page wrote it:
// sign-out (js/sign-out.js) counts it to warn, then forgets it, so that a
// shared computer keeps no one's answers after they sign out.
export async function keptAnswers() {
  const db = await openStore();
  try {
    return (await run(db, "readonly", (store) => store.count())) || 0;
  } finally {
    db.close();
  }
}

export async function forgetAnswers() {
  const db = await openStore();
  try {
    await run(db, "readwrite", (store) => store.clear());
  } finally {
    db.close();
  }
}

// The problem an error response names, in the API's words (the field's own
// message when there is one).
async function problemOf(response) {
  try {
    const body = await response.json();
    const error = body && body.error;
    if (!error) return "";
    const detail = Array.isArray(error.details) ? error.details.find((d) => d && d.message) : null;
    return String((detail && detail.message) || error.message || "");
  } catch {
    return "";
  }
}

function retryAfterMs(response) {
  const seconds = Number(response.headers.get("Retry-After"));
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 120) * 1000 : 0;
}

export class Outbox {
  // seqs: the client_seq the server holds per question, as rendered in the page.
  // Callbacks: onChange() after any change of state; onRejected(questionId,
  // message) for an answer the server will never accept (422); onSaved(questionId,
  // answer) when the server holds an answer; onClosed() when the attempt is over
  // (409); onSignedOut() on 401; onRefused(status) on 403/404.
  constructor({ sessionId, csrf, seqs, ...callbacks }) {
    this.sessionId = sessionId;
    this.csrf = csrf;
    this.serverSeqs = new Map(Object.entries(seqs));
    // The highest client_seq known per question (the server's, then ours).
    this.seqs = new Map(Object.entries(seqs));
    this.pending = new Map();
    // Questions whose pending record is written to disk (not only in memory).
    this.onDisk = new Set();
    this.callbacks = callbacks;
    this.attempt = 0;
    this.timer = null;
    this.sending = false;
    this.again = false;
    // Why sending has stopped for good on this page: "closed", "signed-out", "refused".
    this.stopped = null;
    this.offline = !navigator.onLine;
    this.lastSavedAt = null;
    this.storageFailed = false;
    this.keptAcrossLoad = 0;
  }

  async open() {
    try {
      this.db = await openStore();
    } catch {
      // Private windows of some browsers refuse IndexedDB: the outbox then
      // lives in memory only, and the page says so.
      this.db = null;
      this.storageFailed = true;
    }
    const all = this.db ? await run(this.db, "readonly", (store) => store.getAll()) : [];
    const kept = [];
    for (const record of all || []) {
      if (record.sessionId !== this.sessionId) continue;
      const server = this.serverSeqs.get(record.questionId) || 0;
      if (record.clientSeq <= server) {
        // The server holds this answer or a newer one: the page shows the server's.
        run(this.db, "readwrite", (store) => store.delete([this.sessionId, record.questionId]));
        continue;
      }
      this.pending.set(record.questionId, { ...record, resends: 0 });
      this.onDisk.add(record.questionId);
      this.seqs.set(record.questionId, record.clientSeq);
      kept.push(record);
    }
    this.keptAcrossLoad = kept.length;
    window.addEventListener("online", () => {
      this.offline = false;
      this.attempt = 0;
      this.send();
    });
    window.addEventListener("offline", () => {
      this.offline = true;
      this.changed();
    });
    return kept;
  }

  // Keep the latest answer of a question and send it. The record is in the
  // outbox (in memory at once, on disk when the returned promise settles).
  put(questionId, answer) {
    const clientSeq = (this.seqs.get(questionId) || 0) + 1;
    this.seqs.set(questionId, clientSeq);
    const record = { sessionId: this.sessionId, questionId, answer, clientSeq, resends: 0 };
    this.pending.set(questionId, record);
    this.onDisk.delete(questionId);
    this.changed();
    const stored = run(this.db, "readwrite", (store) => store.put(this.stored(record))).then(
      () => {
        if (this.db && this.pending.get(questionId) === record) this.onDisk.add(questionId);
        this.changed();
      },
      () => {
        this.storageFailed = true;
        this.changed();
      },
    );
    this.send();
    return stored;
  }

  // Whether every pending answer is on disk, where a closed page or a crash cannot lose it.
  allOnDisk() {
    return [...this.pending.keys()].every((id) => this.onDisk.has(id));
  }

  stored(record) {
    const { resends, ...kept } = record;
    return kept;
  }

  isPending(questionId) {
    return this.pending.has(questionId);
  }

  changed() {
    this.callbacks.onChange?.(this);
  }

  // Sending again later: exponential backoff with full jitter, so that the
  // pages of a whole room that lost the network together do not come back in
  // step; a Retry-After from the server is a floor.
  schedule(floorMs = 0) {
    window.clearTimeout(this.timer);
    const ceiling = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 10);
    const delay = Math.max(floorMs, ceiling / 2 + Math.random() * (ceiling / 2));
    this.retryAt = Date.now() + delay;
    this.timer = window.setTimeout(() => this.send(), delay);
  }

  // Send everything pending, one request at a time. Resolves once the outbox
  // is empty or a request failed (then a retry is scheduled).
  async send() {
    if (this.stopped) return;
    if (this.sending) {
      this.again = true;
      return this.sendingDone;
    }
    this.sending = true;
    window.clearTimeout(this.timer);
    let finish;
    this.sendingDone = new Promise((resolve) => {
      finish = resolve;
    });
    try {
      do {
        this.again = false;
        for (const record of [...this.pending.values()]) {
          if (this.stopped) return;
          if (this.pending.get(record.questionId) !== record) continue; // replaced meanwhile
          const outcome = await this.sendOne(record);
          if (outcome !== true) {
            if (!this.stopped) this.schedule(outcome || 0);
            return;
          }
        }
      } while (this.again);
      this.attempt = 0;
    } finally {
      this.sending = false;
      this.changed();
      finish();
    }
  }

  // Send until the outbox is empty, for Submit: true when everything is saved.
  async flush() {
    for (let round = 0; round < 3 && this.pending.size && !this.stopped; round += 1) {
      await this.send();
    }
    return this.pending.size === 0;
  }

  request(record, keepalive) {
    const body = JSON.stringify({ answer: record.answer, client_seq: record.clientSeq });
    return {
      body,
      size: encoder.encode(body).length,
      send: () =>
        fetch(`/api/v1/sessions/${this.sessionId}/responses/${record.questionId}`, {
          method: "PUT",
          credentials: "same-origin",
          keepalive,
          headers: { "Content-Type": "application/json", "X-CSRF-Token": this.csrf },
          body,
        }),
    };
  }

  // true when the record is settled (saved, or refused for good); otherwise
  // the milliseconds to wait at least before trying again (0: the usual backoff).
  async sendOne(record) {
    let response;
    try {
      response = await this.request(record, false).send();
    } catch {
      this.offline = true;
      this.changed();
      return 0;
    }
    this.offline = false;
    return this.settle(record, response);
  }

  async settle(record, response) {
    if (response.ok) {
      let ack;
      try {
        ack = await response.json();
      } catch {
        return 0;
      }
      if (ack.applied === false && ack.client_seq >= record.clientSeq) {
        return this.resendAbove(record, ack.client_seq);
      }
      this.lastSavedAt = new Date();
      await this.acknowledge(record, ack.client_seq);
      return true;
    }
    const status = response.status;
    if (status === 422) {
      // Never acceptable as it stands: dropped, so it blocks no other question;
      // the student sees why beside the field and the next change is sent anew.
      const message = await problemOf(response);
      await this.acknowledge(record, record.clientSeq, { saved: false });
      this.callbacks.onRejected?.(record.questionId, message);
      return true;
    }
    if (status === 409) {
      this.stop("closed");
      this.callbacks.onClosed?.();
      return false;
    }
    if (status === 401) {
      // Kept on this device: after signing in again, the page sends them.
      this.stop("signed-out");
      this.callbacks.onSignedOut?.();
      return false;
    }
    if (status === 403 || status === 404) {
      this.stop("refused");
      this.callbacks.onRefused?.(status);
      return false;
    }
    // 429, 5xx, a proxy's error page: try again later.
    return retryAfterMs(response);
  }

  // Another device saved this question with a number at least as high: send
  // this device's latest change again, numbered above it.
  async resendAbove(record, serverSeq) {
    this.seqs.set(record.questionId, Math.max(this.seqs.get(record.questionId) || 0, serverSeq));
    if (this.pending.get(record.questionId) !== record) return true; // a newer change follows
    if (record.resends >= MAX_RESENDS) {
      // Someone keeps saving in between: the server's answer stands.
      await this.acknowledge(record, serverSeq, { saved: false });
      return true;
    }
    const again = { ...record, clientSeq: serverSeq + 1, resends: record.resends + 1 };
    this.seqs.set(record.questionId, again.clientSeq);
    this.pending.set(record.questionId, again);
    await run(this.db, "readwrite", (store) => store.put(this.stored(again))).catch(() => {});
    this.onDisk.add(record.questionId);
    this.again = true;
    if (!this.sending) this.send();
    return true;
  }

  async acknowledge(record, ackSeq, { saved = true } = {}) {
    const current = this.pending.get(record.questionId);
    this.seqs.set(record.questionId, Math.max(this.seqs.get(record.questionId) || 0, ackSeq));
    if (saved) this.serverSeqs.set(record.questionId, ackSeq);
    // A newer change made while this one was on its way stays in the outbox.
    if (current && current.clientSeq <= ackSeq) {
      this.pending.delete(record.questionId);
      this.onDisk.delete(record.questionId);
      await run(this.db, "readwrite", (store) =>
        store.delete([this.sessionId, record.questionId]),
      ).catch(() => {});
    }
    if (saved) this.callbacks.onSaved?.(record.questionId, record.answer);
    this.changed();
  }

  stop(reason) {
    this.stopped = reason;
    window.clearTimeout(this.timer);
    this.changed();
  }

  // Forget what is kept for this attempt (it is over: nothing more can be saved).
  async clear() {
    this.pending.clear();
    this.onDisk.clear();
    const ids = [...this.seqs.keys()];
    await run(this.db, "readwrite", (store) => {
      for (const id of ids) store.delete([this.sessionId, id]);
      return null;
    }).catch(() => {});
    this.changed();
  }

  // The page is being hidden or unloaded: send what is pending now, in
  // keepalive requests that outlive the page, all started in this same task
  // (a page being unloaded runs no later task). The smallest go first so the
  // most answers fit the browser's allowance; what does not fit stays on disk
  // and is sent on the next load (or when the page is shown again).
  flushOnHide() {
    if (this.stopped || !this.pending.size) return;
    let budget = KEEPALIVE_BUDGET;
    const requests = [...this.pending.values()]
      .map((record) => ({ record, ...this.request(record, true) }))
      .sort((a, b) => a.size - b.size);
    for (const { record, size, send } of requests) {
      if (size > budget) break;
      budget -= size;
      let sent;
      try {
        sent = send();
      } catch {
        continue;
      }
      // The page may well survive (a hidden tab): then the answer settles as usual.
      sent
        .then((response) => this.settle(record, response))
        .then(
          (outcome) => {
            if (outcome !== true && !this.stopped) this.schedule(outcome || 0);
          },
          () => {
            if (!this.stopped) this.schedule();
          },
        );
    }
  }
}
