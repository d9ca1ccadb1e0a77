#include <assert.h>
int checked_div(int a, int b) {
    assert(b != 0);
    return a / b;
}
