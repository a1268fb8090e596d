// Group the words that are anagrams of each other.
// Each group sorted, groups ordered by their first word.
function groupAnagrams(words) {
  const buckets = {};
  words.forEach(function (word) {
    const signature = histogram(word);
    buckets[signature] = buckets[signature] || [];
    buckets[signature].push(word);
  });
  return Object.keys(buckets)
    .map(function (s) { return buckets[s].slice().sort(); })
    .sort(function (g, h) { return g[0].localeCompare(h[0]); });
}

/* count of each letter a..z */
function histogram(word) {
  const h = new Array(26).fill(0);
  let pos = 0;
  while (pos < word.length) {
    h[word.charCodeAt(pos) - 97] += 1;
    pos++;
  }
  return h.join(",");
}

const input = require("fs").readFileSync(0, "utf8").split(/\s+/).filter(Boolean);
for (const group of groupAnagrams(input)) console.log(group.join(" "));
