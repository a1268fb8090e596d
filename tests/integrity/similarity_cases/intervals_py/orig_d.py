def merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge overlapping closed intervals; return them sorted by start."""
    events = []
    for a, b in intervals:
        events.append((a, 0))
        events.append((b, 1))
    events.sort()
    open_count = 0
    begin = None
    out = []
    for point, kind in events:
        if kind == 0:
            if open_count == 0:
                begin = point
            open_count += 1
        else:
            open_count -= 1
            if open_count == 0:
                out.append((begin, point))
    return out


def read_intervals(text: str) -> list[tuple[int, int]]:
    pairs = []
    for line in text.splitlines():
        a, b = line.split()
        pairs.append((int(a), int(b)))
    return pairs
