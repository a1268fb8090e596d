import sys

LIMIT = 10_000_000


def primes_up_to(n: int) -> list[int]:
    """All primes p with 2 <= p <= n, in increasing order."""
    if n > LIMIT:
        n = LIMIT
    plist: list[int] = []
    for num in range(2, n + 1):
        good = True
        tried = 0
        for f in plist:
            tried += 1
            if f * f > num:
                break
            if num % f == 0:
                good = False
                break
        if good:
            plist.append(num)
    return plist


if __name__ == "__main__":
    print(" ".join(map(str, primes_up_to(int(sys.stdin.read())))))
