import sys


def is_balanced(text: str) -> bool:
    """True when every (, [ and { in text is closed in the right order."""
    opens = "([{"
    closes = ")]}"
    depth = [0, 0, 0]
    order = []
    for symbol in text:
        where = opens.find(symbol)
        if where >= 0:
            depth[where] += 1
            order.append(where)
            continue
        where = closes.find(symbol)
        if where < 0:
            continue
        if not order or order[-1] != where:
            return False
        order.pop()
        depth[where] -= 1
    return all(d == 0 for d in depth) and not order


def main() -> None:
    for line in sys.stdin:
        print("yes" if is_balanced(line.rstrip("\n")) else "no")


if __name__ == "__main__":
    main()
