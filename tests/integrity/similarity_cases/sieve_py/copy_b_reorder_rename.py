import sys


def primes_up_to(n: int) -> list[int]:
    """All primes p with 2 <= p <= n, in increasing order."""
    ans = []
    for x in range(2, n + 1):
        if prime_check(x):
            ans.append(x)
    return ans


def prime_check(value):
    """trial division"""
    if value < 2:
        return False
    div = 2
    while div * div <= value:
        if value % div == 0:
            return False
        div += 1
    return True


if __name__ == "__main__":
    print(" ".join(map(str, primes_up_to(int(sys.stdin.read())))))
