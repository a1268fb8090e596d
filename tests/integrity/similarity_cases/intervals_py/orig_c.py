def overlaps(x, y):
    return x[0] <= y[1] and y[0] <= x[1]


def merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge overlapping closed intervals; return them sorted by start."""
    todo = list(intervals)
    changed = True
    while changed:
        changed = False
        for i in range(len(todo)):
            for j in range(i + 1, len(todo)):
                if overlaps(todo[i], todo[j]):
                    joined = (min(todo[i][0], todo[j][0]), max(todo[i][1], todo[j][1]))
                    del todo[j]
                    todo[i] = joined
                    changed = True
                    break
            if changed:
                break
    todo.sort()
    return todo


def read_intervals(text: str) -> list[tuple[int, int]]:
    pairs = []
    for line in text.splitlines():
        a, b = line.split()
        pairs.append((int(a), int(b)))
    return pairs
