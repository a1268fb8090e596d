import sys


def group_runs(s):
    acc = []
    for x in s:
        if acc and acc[-1][0] == x:
            acc[-1][1] += 1
        else:
            acc.append([x, 1])
    return acc


def decode(code: str) -> str:
    """Inverse of encode."""
    idx = 0
    bits = []
    while idx < len(code):
        begin = idx
        while code[idx].isdigit():
            idx += 1
        bits.append(code[idx] * int(code[begin:idx]))
        idx += 1
    return "".join(bits)


def encode(text: str) -> str:
    """Return the run-length encoding of text, e.g. 'aaab' -> '3a1b'."""
    return "".join("%d%s" % (cnt, x) for x, cnt in group_runs(text))


if __name__ == "__main__":
    mode, payload = sys.stdin.read().split("\n", 1)
    print(encode(payload.strip()) if mode == "encode" else decode(payload.strip()))
