// Reading a question's answer from its inputs, by kind: the shapes the
// autosave route accepts (see the kinds registry on the server). null means
// "nothing to save yet" (an empty field, or a number that does not parse).

const readers = {
  mcq_single(section) {
    const picked = section.querySelector('input[type="radio"]:checked');
    return picked ? { choice: picked.value } : null;
  },
  mcq_multi(section) {
    const picked = [...section.querySelectorAll('input[type="checkbox"]:checked')];
    return { choices: picked.map((input) => input.value) };
  },
  numeric(section) {
    const text = section.querySelector('input[name="value"]').value.trim().replace(",", ".");
    if (text === "") return null;
    const value = Number(text);
    return Number.isFinite(value) ? { value } : null;
  },
  short_text(section) {
    const text = section.querySelector('input[name="text"]').value;
    return text.trim() === "" ? null : { text };
  },
  coding(section) {
    const language = section.querySelector('select[name="language"]');
    const source = section.querySelector('textarea[name="source"]');
    return { language: language.value, source: source.value };
  },
};

export function readAnswer(section) {
  const reader = readers[section.dataset.kind];
  return reader ? reader(section) : null;
}

// Whether the inputs hold an answer (for the navigator and the review).
export function isAnswered(section) {
  const answer = readAnswer(section);
  if (answer === null) return false;
  if (section.dataset.kind === "mcq_multi") return answer.choices.length > 0;
  if (section.dataset.kind === "coding") return answer.source.trim() !== "";
  return true;
}

// Put an answer back into the inputs (from the outbox after a reload).
export function writeAnswer(section, answer) {
  switch (section.dataset.kind) {
    case "mcq_single":
      for (const input of section.querySelectorAll('input[type="radio"]')) {
        input.checked = input.value === answer.choice;
      }
      break;
    case "mcq_multi":
      for (const input of section.querySelectorAll('input[type="checkbox"]')) {
        input.checked = (answer.choices || []).includes(input.value);
      }
      break;
    case "numeric":
      section.querySelector('input[name="value"]').value = String(answer.value);
      break;
    case "short_text":
      section.querySelector('input[name="text"]').value = answer.text;
      break;
    case "coding":
      section.querySelector('select[name="language"]').value = answer.language;
      section.querySelector('textarea[name="source"]').value = answer.source;
      break;
  }
}
