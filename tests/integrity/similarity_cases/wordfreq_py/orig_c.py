import sys
import heapq
import string


def top_words(text: str, n: int) -> list[tuple[str, int]]:
    """The n most frequent words (lower-cased, letters only), ties broken alphabetically."""
    table = str.maketrans({c: " " for c in string.punctuation + string.digits})
    tally: dict[str, int] = {}
    for token in text.translate(table).lower().split():
        if token.isalpha():
            if token in tally:
                tally[token] += 1
            else:
                tally[token] = 1
    best = heapq.nsmallest(n, tally.items(), key=lambda pair: (-pair[1], pair[0]))
    return best


if __name__ == "__main__":
    data = sys.stdin.read()
    for word, count in top_words(data, 10):
        print(word, count)
