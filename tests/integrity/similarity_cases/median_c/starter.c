#include <stdio.h>
#include <stdlib.h>

/* Return the median of values[0..n-1]; for even n the mean of the middle two. */
double median(int *values, int n);

int main(void) {
    int n;
    if (scanf("%d", &n) != 1) return 1;
    int *v = malloc(sizeof(int) * n);
    for (int i = 0; i < n; i++) scanf("%d", &v[i]);
    printf("%.1f\n", median(v, n));
    free(v);
    return 0;
}
