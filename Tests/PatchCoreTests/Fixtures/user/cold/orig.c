#include <stdio.h>
#include <stdlib.h>
__attribute__((cold, noinline)) void report_bad(const char *s, int i) { fprintf(stderr, "bad %s %d\n", s, i); }
int verbose;
__attribute__((noinline)) int parse(const char *s, int n) {
    int total = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] == '!') {
            report_bad(s, i);
            if (verbose) fprintf(stderr, "parse: giving up after %d\n", total);
            return -1;
        }
        total += s[i];
    }
    return total;
}
