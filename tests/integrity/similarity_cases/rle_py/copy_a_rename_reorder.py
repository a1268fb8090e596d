import sys


def decode(code: str) -> str:
    """Inverse of encode."""
    # rebuild the original string from the counts
    res = []
    num = ""
    for symbol in code:
        if symbol.isdigit():
            num += symbol
        else:
            res.append(symbol * int(num))
            num = ""
    return "".join(res)


def encode(text: str) -> str:
    """Return the run-length encoding of text, e.g. 'aaab' -> '3a1b'."""
    if not text:
        return ""
    chunks = []
    prev = text[0]
    run_len = 1
    for letter in text[1:]:
        if letter == prev:
            run_len += 1
        else:
            chunks.append(f"{run_len}{prev}")  # close the run
            prev = letter
            run_len = 1
    chunks.append(f"{run_len}{prev}")
    return "".join(chunks)


if __name__ == "__main__":
    mode, payload = sys.stdin.read().split("\n", 1)
    print(encode(payload.strip()) if mode == "encode" else decode(payload.strip()))
