import sys


def runs(text):
    # split the text into (char, length) runs
    found = []
    for ch in text:
        if found and found[-1][0] == ch:
            found[-1][1] += 1
        else:
            found.append([ch, 1])
    return found


def encode(text: str) -> str:
    """Return the run-length encoding of text, e.g. 'aaab' -> '3a1b'."""
    return "".join("%d%s" % (n, ch) for ch, n in runs(text))


def decode(code: str) -> str:
    """Inverse of encode."""
    pos = 0
    pieces = []
    while pos < len(code):
        start = pos
        while code[pos].isdigit():
            pos += 1
        pieces.append(code[pos] * int(code[start:pos]))
        pos += 1
    return "".join(pieces)


if __name__ == "__main__":
    mode, payload = sys.stdin.read().split("\n", 1)
    print(encode(payload.strip()) if mode == "encode" else decode(payload.strip()))
