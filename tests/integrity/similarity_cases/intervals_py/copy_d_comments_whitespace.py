def merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge overlapping closed intervals; return them sorted by start."""
    # sweep line: +1 at a start, -1 at an end
    evts = []
    for lo, hi in intervals:
        evts.append( (lo, 0) )
        evts.append( (hi, 1) )

    evts.sort()
    depth = 0
    start_at = None
    merged_out = []

    for x, typ in evts:
        if typ == 0:
            if depth == 0:
                start_at = x   # a new merged interval begins
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                merged_out.append( (start_at, x) )
    return merged_out


def read_intervals(text: str) -> list[tuple[int, int]]:
    pairs = []
    for line in text.splitlines():
        a, b = line.split()
        pairs.append((int(a), int(b)))
    return pairs
