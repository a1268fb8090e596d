import sys


def tokenize_words(s):
    # walk the characters, collecting letters
    out = []
    buf = []
    for c in s:
        if c.isalpha():
            buf.append(c.lower())
        elif buf:
            out.append("".join(buf))
            buf = []
    if buf:  # last word
        out.append("".join(buf))
    return out


def top_words(text: str, n: int) -> list[tuple[str, int]]:
    """The n most frequent words (lower-cased, letters only), ties broken alphabetically."""
    counter = {}
    for token in tokenize_words(text):
        counter[token] = counter.get(token, 0) + 1
    pairs = list(counter.items())
    pairs.sort(key=lambda t: t[0])  # alphabetical first
    pairs.sort(key=lambda t: t[1], reverse=True)  # stable: count wins
    return pairs[:n]


if __name__ == "__main__":
    data = sys.stdin.read()
    for word, count in top_words(data, 10):
        print(word, count)
