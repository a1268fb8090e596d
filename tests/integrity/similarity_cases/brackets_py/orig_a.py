import sys

PAIRS = {")": "(", "]": "[", "}": "{"}


def is_balanced(text: str) -> bool:
    """True when every (, [ and { in text is closed in the right order."""
    stack = []
    for ch in text:
        if ch in "([{":
            stack.append(ch)
        elif ch in PAIRS:
            if not stack or stack.pop() != PAIRS[ch]:
                return False
    return not stack


def main() -> None:
    for line in sys.stdin:
        print("yes" if is_balanced(line.rstrip("\n")) else "no")


if __name__ == "__main__":
    main()
