import sys

# maps each closing bracket to its opener
MATCH = {")": "(", "]": "[", "}": "{"}


def is_balanced(text: str) -> bool:
    """True when every (, [ and { in text is closed in the right order."""
    seen = []  # openers waiting for a partner
    for c in text:
        if c in "([{":
            seen.append(c)
        elif c in MATCH:
            # mismatch or nothing open
            if not seen or seen.pop() != MATCH[c]:
                return False
    return not seen


def main() -> None:
    for line in sys.stdin:
        print("yes" if is_balanced(line.rstrip("\n")) else "no")


if __name__ == "__main__":
    main()
