#include <stdio.h>
#include <stdlib.h>

/* simple sort, good enough for small inputs */
void sort_values(int *arr, int len) {
    int p = 1;
    while (p < len) {
        int cur = arr[p];
        int q = p - 1;
        while (q >= 0 && arr[q] > cur) {
            arr[q + 1] = arr[q];
            q--;
        }
        arr[q + 1] = cur;
        p++;
    }
}

/* Return the median of values[0..n-1]; for even n the mean of the middle two. */
double median(int *values, int n) {
    sort_values(values, n);
    double m = values[n / 2];
    if (n % 2 == 0) {
        m = (m + values[n / 2 - 1]) / 2;
    }
    return m;
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
