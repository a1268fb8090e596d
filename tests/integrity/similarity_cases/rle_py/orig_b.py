import sys
import re
from itertools import groupby


def encode(text: str) -> str:
    """Return the run-length encoding of text, e.g. 'aaab' -> '3a1b'."""
    return "".join(str(len(list(group))) + key for key, group in groupby(text))


def decode(code: str) -> str:
    """Inverse of encode."""
    pieces = re.findall(r"(\d+)(\D)", code)
    return "".join(letter * int(n) for n, letter in pieces)


if __name__ == "__main__":
    mode, payload = sys.stdin.read().split("\n", 1)
    print(encode(payload.strip()) if mode == "encode" else decode(payload.strip()))
