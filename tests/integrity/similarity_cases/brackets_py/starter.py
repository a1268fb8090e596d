import sys


def is_balanced(text: str) -> bool:
    """True when every (, [ and { in text is closed in the right order."""
    raise NotImplementedError


def main() -> None:
    for line in sys.stdin:
        print("yes" if is_balanced(line.rstrip("\n")) else "no")


if __name__ == "__main__":
    main()
