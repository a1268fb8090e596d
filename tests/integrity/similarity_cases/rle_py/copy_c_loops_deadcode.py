import sys

DEBUG = False


def encode(text: str) -> str:
    """Return the run-length encoding of text, e.g. 'aaab' -> '3a1b'."""
    out = ""
    i = 0
    while i < len(text):
        j = i
        while j < len(text) and text[j] == text[i]:
            j = j + 1
        if DEBUG:
            print("run", i, j)
        out = out + str(j - i) + text[i]
        i = j
    return out


def decode(code: str) -> str:
    """Inverse of encode."""
    out = ""
    number = 0
    k = 0
    while k < len(code):
        c = code[k]
        k += 1
        if "0" <= c <= "9":
            number = number * 10 + (ord(c) - ord("0"))
            continue
        out = out + c * number
        number = 0
    return out


def unused_helper(values):
    total = 0
    for v in values:
        total += v
    return total


if __name__ == "__main__":
    mode, payload = sys.stdin.read().split("\n", 1)
    print(encode(payload.strip()) if mode == "encode" else decode(payload.strip()))
