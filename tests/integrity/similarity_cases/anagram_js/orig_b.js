// Group the words that are anagrams of each other.
// Each group sorted, groups ordered by their first word.
function letterCounts(word) {
  const counts = new Array(26).fill(0);
  for (let i = 0; i < word.length; i++) {
    counts[word.charCodeAt(i) - 97] += 1;
  }
  return counts.join(",");
}

function groupAnagrams(words) {
  const table = {};
  words.forEach(function (w) {
    const sig = letterCounts(w);
    table[sig] = table[sig] || [];
    table[sig].push(w);
  });
  return Object.keys(table)
    .map(function (k) { return table[k].slice().sort(); })
    .sort(function (x, y) { return x[0].localeCompare(y[0]); });
}

const input = require("fs").readFileSync(0, "utf8").split(/\s+/).filter(Boolean);
for (const group of groupAnagrams(input)) console.log(group.join(" "));
