static __attribute__((noinline)) int old_helper(int x) { return x + 41; }
int answer(int x) { return old_helper(x) * 2; }
