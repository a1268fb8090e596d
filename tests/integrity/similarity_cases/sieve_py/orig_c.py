import sys


def primes_up_to(n: int) -> list[int]:
    """All primes p with 2 <= p <= n, in increasing order."""
    primes: list[int] = []
    for number in range(2, n + 1):
        prime = True
        for q in primes:
            if q * q > number:
                break
            if number % q == 0:
                prime = False
                break
        if prime:
            primes.append(number)
    return primes


if __name__ == "__main__":
    print(" ".join(map(str, primes_up_to(int(sys.stdin.read())))))
