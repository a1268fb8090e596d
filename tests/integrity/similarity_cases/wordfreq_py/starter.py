import sys


def top_words(text: str, n: int) -> list[tuple[str, int]]:
    """The n most frequent words (lower-cased, letters only), ties broken alphabetically."""
    raise NotImplementedError


if __name__ == "__main__":
    data = sys.stdin.read()
    for word, count in top_words(data, 10):
        print(word, count)
