// Group the words that are anagrams of each other.
// Each group sorted, groups ordered by their first word.
function isAnagram(a, b) {
  if (a.length !== b.length) return false;
  const seen = {};
  for (const ch of a) seen[ch] = (seen[ch] || 0) + 1;
  for (const ch of b) {
    if (!seen[ch]) return false;
    seen[ch] -= 1;
  }
  return true;
}

function groupAnagrams(words) {
  const used = new Array(words.length).fill(false);
  const result = [];
  for (let i = 0; i < words.length; i++) {
    if (used[i]) continue;
    const group = [words[i]];
    used[i] = true;
    for (let j = i + 1; j < words.length; j++) {
      if (!used[j] && isAnagram(words[i], words[j])) {
        group.push(words[j]);
        used[j] = true;
      }
    }
    result.push(group.sort());
  }
  return result.sort((p, q) => (p[0] > q[0]) - (p[0] < q[0]));
}

const input = require("fs").readFileSync(0, "utf8").split(/\s+/).filter(Boolean);
for (const group of groupAnagrams(input)) console.log(group.join(" "));
