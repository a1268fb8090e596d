import sys


def is_prime(k):
    if k < 2:
        return False
    d = 2
    while d * d <= k:
        if k % d == 0:
            return False
        d += 1
    return True


def primes_up_to(n: int) -> list[int]:
    """All primes p with 2 <= p <= n, in increasing order."""
    found = []
    for candidate in range(2, n + 1):
        if is_prime(candidate):
            found.append(candidate)
    return found


if __name__ == "__main__":
    print(" ".join(map(str, primes_up_to(int(sys.stdin.read())))))
