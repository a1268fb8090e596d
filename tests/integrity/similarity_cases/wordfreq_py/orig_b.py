import sys


def split_words(text):
    words = []
    current = []
    for ch in text:
        if ch.isalpha():
            current.append(ch.lower())
        elif current:
            words.append("".join(current))
            current = []
    if current:
        words.append("".join(current))
    return words


def top_words(text: str, n: int) -> list[tuple[str, int]]:
    """The n most frequent words (lower-cased, letters only), ties broken alphabetically."""
    freq = {}
    for w in split_words(text):
        freq[w] = freq.get(w, 0) + 1
    items = list(freq.items())
    items.sort(key=lambda kv: kv[0])
    items.sort(key=lambda kv: kv[1], reverse=True)
    return items[:n]


if __name__ == "__main__":
    data = sys.stdin.read()
    for word, count in top_words(data, 10):
        print(word, count)
