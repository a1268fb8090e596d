// The outbox: every change to an answer is kept in IndexedDB (the latest per
// question, with its client_seq) before it is sent to the autosave route, and
// leaves the outbox only when the server has acknowledged that sequence
// number. A reload, a crash or a lost connection therefore loses nothing: the
// next page load sends whatever is still here.

const DB_NAME = "safexam";
const STORE = "outbox";
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30000;

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
  return new Promise((resolve, reject) => {
    const transaction = db.transaction(STORE, mode);
    const result = work(transaction.objectStore(STORE));
    transaction.oncomplete = () => resolve(result && "result" in result ? result.result : undefined);
    transaction.onerror = () => reject(transaction.error);
  });
}

export class Outbox {
  constructor({ sessionId, csrf, seqs, onChange }) {
    this.sessionId = sessionId;
    this.csrf = csrf;
    // The highest client_seq known per question (the server's, then ours).
    this.seqs = new Map(Object.entries(seqs));
    this.pending = new Map();
    this.onChange = onChange;
    this.delay = RETRY_MIN_MS;
    this.timer = null;
    this.sending = false;
    this.stopped = false;
    this.offline = !navigator.onLine;
    this.lastSavedAt = null;
  }

  async open() {
    this.db = await openStore();
    const all = await run(this.db, "readonly", (store) => store.getAll());
    for (const record of all) {
      if (record.sessionId !== this.sessionId) continue;
      this.pending.set(record.questionId, record);
      const known = this.seqs.get(record.questionId) || 0;
      this.seqs.set(record.questionId, Math.max(known, record.clientSeq));
    }
    window.addEventListener("online", () => {
      this.offline = false;
      this.send();
    });
    window.addEventListener("offline", () => {
      this.offline = true;
      this.changed();
    });
    return [...this.pending.values()];
  }

  async put(questionId, answer) {
    const clientSeq = (this.seqs.get(questionId) || 0) + 1;
    this.seqs.set(questionId, clientSeq);
    const record = { sessionId: this.sessionId, questionId, answer, clientSeq };
    this.pending.set(questionId, record);
    this.changed();
    await run(this.db, "readwrite", (store) => store.put(record));
    this.send();
  }

  isPending(questionId) {
    return this.pending.has(questionId);
  }

  changed() {
    this.onChange?.(this);
  }

  schedule() {
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(() => this.send(), this.delay);
    this.delay = Math.min(this.delay * 2, RETRY_MAX_MS);
  }

  async send({ keepalive = false } = {}) {
    if (this.stopped || (this.sending && !keepalive)) return;
    this.sending = true;
    try {
      for (const record of [...this.pending.values()]) {
        if (this.stopped) break;
        const ok = await this.sendOne(record, keepalive);
        if (!ok) {
          this.schedule();
          return;
        }
      }
      this.delay = RETRY_MIN_MS;
    } finally {
      this.sending = false;
      this.changed();
    }
  }

  async sendOne(record, keepalive) {
    let response;
    try {
      response = await fetch(
        `/api/v1/sessions/${this.sessionId}/responses/${record.questionId}`,
        {
          method: "PUT",
          credentials: "same-origin",
          keepalive,
          headers: { "Content-Type": "application/json", "X-CSRF-Token": this.csrf },
          body: JSON.stringify({ answer: record.answer, client_seq: record.clientSeq }),
        },
      );
    } catch {
      this.offline = !navigator.onLine || true;
      return false;
    }
    this.offline = false;
    if (response.ok) {
      const ack = await response.json();
      this.lastSavedAt = new Date();
      await this.acknowledge(record, ack.client_seq);
      return true;
    }
    if (response.status === 409 || response.status === 403 || response.status === 404) {
      // The attempt is over (or not this student's): nothing more can be saved.
      this.stopped = true;
      this.onStopped?.(response.status);
      return false;
    }
    if (response.status === 422) {
      // Never acceptable as it stands: keeping it would block the questions after it.
      await this.acknowledge(record, record.clientSeq);
      this.onRejected?.(record.questionId, await response.json().catch(() => null));
      return true;
    }
    return false;
  }

  async acknowledge(record, ackSeq) {
    const current = this.pending.get(record.questionId);
    this.seqs.set(record.questionId, Math.max(this.seqs.get(record.questionId) || 0, ackSeq));
    // A newer change made while this one was on its way stays in the outbox.
    if (current && current.clientSeq <= ackSeq) {
      this.pending.delete(record.questionId);
      await run(this.db, "readwrite", (store) => store.delete([this.sessionId, record.questionId]));
    }
  }
}
