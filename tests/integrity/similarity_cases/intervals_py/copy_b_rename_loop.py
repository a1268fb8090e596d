def merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge overlapping closed intervals; return them sorted by start."""
    if len(intervals) == 0:
        return []
    srt = sorted(intervals, key=lambda p: p[0])
    answer = []
    cur_lo, cur_hi = srt[0]
    for nxt_lo, nxt_hi in srt[1:]:
        if nxt_lo > cur_hi:
            answer.append((cur_lo, cur_hi))
            cur_lo, cur_hi = nxt_lo, nxt_hi
        elif nxt_hi > cur_hi:
            cur_hi = nxt_hi
    answer.append((cur_lo, cur_hi))
    return answer


def read_intervals(text: str) -> list[tuple[int, int]]:
    pairs = []
    for line in text.splitlines():
        a, b = line.split()
        pairs.append((int(a), int(b)))
    return pairs
