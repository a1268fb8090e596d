// Group the words that are anagrams of each other.
// Each group sorted, groups ordered by their first word.
function groupAnagrams(words) {
  const byKey = new Map();
  for (const word of words) {
    const key = word.split("").sort().join("");
    if (!byKey.has(key)) byKey.set(key, []);
    byKey.get(key).push(word);
  }
  const groups = [...byKey.values()].map((g) => g.sort());
  groups.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return groups;
}

const input = require("fs").readFileSync(0, "utf8").split(/\s+/).filter(Boolean);
for (const group of groupAnagrams(input)) console.log(group.join(" "));
