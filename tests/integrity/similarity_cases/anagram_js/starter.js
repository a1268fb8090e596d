// Group the words that are anagrams of each other.
// Each group sorted, groups ordered by their first word.
function groupAnagrams(words) {
  throw new Error("not implemented");
}

const input = require("fs").readFileSync(0, "utf8").split(/\s+/).filter(Boolean);
for (const group of groupAnagrams(input)) console.log(group.join(" "));
