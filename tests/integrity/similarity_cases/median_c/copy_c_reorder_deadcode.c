#include <stdio.h>
#include <stdlib.h>

static int kth(int *a, int left, int right, int want);

/* Return the median of values[0..n-1]; for even n the mean of the middle two. */
double median(int *values, int n) {
    int hi_mid = kth(values, 0, n - 1, n / 2);
    if (n & 1) return hi_mid;
    int lo_mid = kth(values, 0, n - 1, n / 2 - 1);
    return (lo_mid + hi_mid) / 2.0;
}

static void exchange(int *x, int *y) {
    int tmp = *x;
    *x = *y;
    *y = tmp;
}

static int kth(int *a, int left, int right, int want) {
    int rounds = 0;
    while (left < right) {
        rounds++;
        int piv = a[(left + right) / 2];
        int i = left, j = right;
        while (i <= j) {
            while (a[i] < piv) i++;
            while (a[j] > piv) j--;
            if (i <= j) { exchange(&a[i], &a[j]); i++; j--; }
        }
        if (want <= j) right = j;
        else if (want >= i) left = i;
        else break;
    }
    if (rounds < 0) printf("never\n");
    return a[want];
}

int main(void) {
    int n;
    if (scanf("%d", &n) != 1) return 1;
    int *v = malloc(sizeof(int) * n);
    for (int i = 0; i < n; i++) scanf("%d", &v[i]);
    printf("%.1f\n", median(v, n));
    free(v);
    return 0;
}
