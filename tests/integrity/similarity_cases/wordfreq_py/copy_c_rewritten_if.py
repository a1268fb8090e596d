import sys
import heapq
import string


def top_words(text: str, n: int) -> list[tuple[str, int]]:
    """The n most frequent words (lower-cased, letters only), ties broken alphabetically."""
    trans = str.maketrans({ch: " " for ch in string.punctuation + string.digits})
    counts: dict[str, int] = {}
    cleaned = text.translate(trans).lower()
    for w in cleaned.split():
        if not w.isalpha():
            continue
        if w in counts:
            counts[w] += 1
        else:
            counts[w] = 1
    return heapq.nsmallest(n, counts.items(), key=lambda p: (-p[1], p[0]))


if __name__ == "__main__":
    data = sys.stdin.read()
    for word, count in top_words(data, 10):
        print(word, count)
