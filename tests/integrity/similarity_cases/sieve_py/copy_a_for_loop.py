import sys


def primes_up_to(n: int) -> list[int]:
    """All primes p with 2 <= p <= n, in increasing order."""
    # classic sieve of Eratosthenes
    if n < 2:
        return []
    sieve = [True] * (n + 1)
    sieve[0] = sieve[1] = False
    for base in range(2, int(n ** 0.5) + 1):
        if sieve[base]:
            for m in range(base * base, n + 1, base):
                sieve[m] = False
    result = []
    for i, ok in enumerate(sieve):
        if ok:
            result.append(i)
    return result


if __name__ == "__main__":
    print(" ".join(map(str, primes_up_to(int(sys.stdin.read())))))
