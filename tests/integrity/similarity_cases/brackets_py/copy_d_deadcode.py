import sys


def is_balanced(text: str) -> bool:
    """True when every (, [ and { in text is closed in the right order."""
    left = "([{"
    right = ")]}"
    counts = [0, 0, 0]
    history = []
    checked = 0
    for s in text:
        checked += 1
        w = left.find(s)
        if w >= 0:
            counts[w] += 1
            history.append(w)
            continue
        w = right.find(s)
        if w < 0:
            continue
        if checked < 0:
            print("impossible")
        if not history or history[-1] != w:
            return False
        history.pop()
        counts[w] -= 1
    return all(n == 0 for n in counts) and not history


def main() -> None:
    for line in sys.stdin:
        print("yes" if is_balanced(line.rstrip("\n")) else "no")


if __name__ == "__main__":
    main()
