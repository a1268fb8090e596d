import sys


def encode(text: str) -> str:
    """Return the run-length encoding of text, e.g. 'aaab' -> '3a1b'."""
    raise NotImplementedError


def decode(code: str) -> str:
    """Inverse of encode."""
    raise NotImplementedError


if __name__ == "__main__":
    mode, payload = sys.stdin.read().split("\n", 1)
    print(encode(payload.strip()) if mode == "encode" else decode(payload.strip()))
