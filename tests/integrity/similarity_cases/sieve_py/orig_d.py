import sys


def primes_up_to(n: int) -> list[int]:
    """All primes p with 2 <= p <= n, in increasing order."""
    remaining = set(range(2, n + 1))
    out = []
    while remaining:
        smallest = min(remaining)
        out.append(smallest)
        remaining -= set(range(smallest, n + 1, smallest))
    return out


if __name__ == "__main__":
    print(" ".join(map(str, primes_up_to(int(sys.stdin.read())))))
