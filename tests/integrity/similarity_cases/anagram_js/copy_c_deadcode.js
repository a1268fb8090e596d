// Group the words that are anagrams of each other.
// Each group sorted, groups ordered by their first word.
const VERBOSE = false;

function sameLetters(x, y) {
  if (x.length !== y.length) return false;
  const tally = {};
  for (const c of x) tally[c] = (tally[c] || 0) + 1;
  for (const c of y) {
    if (!tally[c]) return false;
    tally[c] -= 1;
  }
  return true;
}

function groupAnagrams(words) {
  const taken = new Array(words.length).fill(false);
  const out = [];
  for (let a = 0; a < words.length; a++) {
    if (taken[a]) continue;
    if (VERBOSE) console.error("checking", words[a]);
    const grp = [words[a]];
    taken[a] = true;
    for (let b = a + 1; b < words.length; b++) {
      if (!taken[b] && sameLetters(words[a], words[b])) {
        grp.push(words[b]);
        taken[b] = true;
      }
    }
    out.push(grp.sort());
  }
  return out.sort((m, n) => (m[0] > n[0]) - (m[0] < n[0]));
}

const input = require("fs").readFileSync(0, "utf8").split(/\s+/).filter(Boolean);
for (const group of groupAnagrams(input)) console.log(group.join(" "));
