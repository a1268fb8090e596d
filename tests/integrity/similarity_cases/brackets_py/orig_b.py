import sys


def is_balanced(text: str) -> bool:
    """True when every (, [ and { in text is closed in the right order."""
    kept = "".join(c for c in text if c in "()[]{}")
    previous = None
    while kept != previous:
        previous = kept
        kept = kept.replace("()", "").replace("[]", "").replace("{}", "")
    return kept == ""


def main() -> None:
    for line in sys.stdin:
        print("yes" if is_balanced(line.rstrip("\n")) else "no")


if __name__ == "__main__":
    main()
