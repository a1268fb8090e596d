import sys


def closing_for(opening):
    if opening == "(":
        return ")"
    if opening == "[":
        return "]"
    return "}"


def is_balanced(text: str) -> bool:
    """True when every (, [ and { in text is closed in the right order."""
    expected = []
    index = 0
    while index < len(text):
        char = text[index]
        index += 1
        if char == "(" or char == "[" or char == "{":
            expected.append(closing_for(char))
        elif char == ")" or char == "]" or char == "}":
            if len(expected) == 0:
                return False
            if expected[-1] != char:
                return False
            expected.pop()
    return len(expected) == 0


def main() -> None:
    for line in sys.stdin:
        print("yes" if is_balanced(line.rstrip("\n")) else "no")


if __name__ == "__main__":
    main()
