def merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge overlapping closed intervals; return them sorted by start."""
    result: list[tuple[int, int]] = []
    for start, end in sorted(intervals):
        if result and start <= result[-1][1]:
            last_start, last_end = result[-1]
            result[-1] = (last_start, max(last_end, end))
        else:
            result.append((start, end))
    return result


def read_intervals(text: str) -> list[tuple[int, int]]:
    pairs = []
    for line in text.splitlines():
        a, b = line.split()
        pairs.append((int(a), int(b)))
    return pairs
