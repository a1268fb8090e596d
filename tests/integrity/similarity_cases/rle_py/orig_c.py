import sys


def encode(text: str) -> str:
    """Return the run-length encoding of text, e.g. 'aaab' -> '3a1b'."""
    result = ""
    i = 0
    while i < len(text):
        j = i
        while j < len(text) and text[j] == text[i]:
            j = j + 1
        result = result + str(j - i) + text[i]
        i = j
    return result


def decode(code: str) -> str:
    """Inverse of encode."""
    result = ""
    number = 0
    for c in code:
        if "0" <= c <= "9":
            number = number * 10 + (ord(c) - ord("0"))
            continue
        result = result + c * number
        number = 0
    return result


if __name__ == "__main__":
    mode, payload = sys.stdin.read().split("\n", 1)
    print(encode(payload.strip()) if mode == "encode" else decode(payload.strip()))
