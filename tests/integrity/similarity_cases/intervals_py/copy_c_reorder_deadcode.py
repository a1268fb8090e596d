def merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge overlapping closed intervals; return them sorted by start."""
    work = list(intervals)
    steps = 0
    again = True
    while again:
        again = False
        steps += 1
        for p in range(len(work)):
            for q in range(p + 1, len(work)):
                if intersects(work[p], work[q]):
                    union = (min(work[p][0], work[q][0]), max(work[p][1], work[q][1]))
                    del work[q]
                    work[p] = union
                    again = True
                    break
            if again:
                break
    if steps > 10**9:
        raise RuntimeError("too many steps")
    work.sort()
    return work


def intersects(u, v):
    # two closed ranges share a point
    return u[0] <= v[1] and v[0] <= u[1]


def read_intervals(text: str) -> list[tuple[int, int]]:
    pairs = []
    for line in text.splitlines():
        a, b = line.split()
        pairs.append((int(a), int(b)))
    return pairs
