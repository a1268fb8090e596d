#include <stdio.h>
#include <stdlib.h>

static void swap(int *p, int *q) {
    int t = *p;
    *p = *q;
    *q = t;
}

/* k-th smallest by quickselect; rearranges the array */
static int select_kth(int *arr, int lo, int hi, int k) {
    while (lo < hi) {
        int pivot = arr[(lo + hi) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (arr[i] < pivot) i++;
            while (arr[j] > pivot) j--;
            if (i <= j) { swap(&arr[i], &arr[j]); i++; j--; }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else break;
    }
    return arr[k];
}

/* Return the median of values[0..n-1]; for even n the mean of the middle two. */
double median(int *values, int n) {
    int upper = select_kth(values, 0, n - 1, n / 2);
    if (n & 1) return upper;
    int lower = select_kth(values, 0, n - 1, n / 2 - 1);
    return (lower + upper) / 2.0;
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
