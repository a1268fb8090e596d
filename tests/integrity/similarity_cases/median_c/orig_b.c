#include <stdio.h>
#include <stdlib.h>

void insertion_sort(int *a, int n) {
    for (int i = 1; i < n; i++) {
        int key = a[i];
        int j = i - 1;
        while (j >= 0 && a[j] > key) {
            a[j + 1] = a[j];
            j--;
        }
        a[j + 1] = key;
    }
}

/* Return the median of values[0..n-1]; for even n the mean of the middle two. */
double median(int *values, int n) {
    insertion_sort(values, n);
    double mid = values[n / 2];
    if (n % 2 == 0) {
        mid = (mid + values[n / 2 - 1]) / 2;
    }
    return mid;
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
