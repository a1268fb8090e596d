import sys


def primes_up_to(n: int) -> list[int]:
    """All primes p with 2 <= p <= n, in increasing order."""
    raise NotImplementedError


if __name__ == "__main__":
    print(" ".join(map(str, primes_up_to(int(sys.stdin.read())))))
