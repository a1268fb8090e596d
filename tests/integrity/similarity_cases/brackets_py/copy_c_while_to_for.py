import sys


def is_balanced(text: str) -> bool:
    """True when every (, [ and { in text is closed in the right order."""
    pending = []
    for ch in text:
        if ch == "(" or ch == "[" or ch == "{":
            pending.append(partner(ch))
        elif ch == ")" or ch == "]" or ch == "}":
            if len(pending) == 0:
                return False
            if pending[-1] != ch:
                return False
            pending.pop()
    return len(pending) == 0


def partner(o):
    if o == "(":
        return ")"
    if o == "[":
        return "]"
    return "}"


def main() -> None:
    for line in sys.stdin:
        print("yes" if is_balanced(line.rstrip("\n")) else "no")


if __name__ == "__main__":
    main()
