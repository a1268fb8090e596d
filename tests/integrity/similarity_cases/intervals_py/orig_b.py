def merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge overlapping closed intervals; return them sorted by start."""
    if len(intervals) == 0:
        return []
    ordered = sorted(intervals, key=lambda iv: iv[0])
    merged = []
    lo, hi = ordered[0]
    for i in range(1, len(ordered)):
        nlo, nhi = ordered[i]
        if nlo > hi:
            merged.append((lo, hi))
            lo, hi = nlo, nhi
        elif nhi > hi:
            hi = nhi
    merged.append((lo, hi))
    return merged


def read_intervals(text: str) -> list[tuple[int, int]]:
    pairs = []
    for line in text.splitlines():
        a, b = line.split()
        pairs.append((int(a), int(b)))
    return pairs
