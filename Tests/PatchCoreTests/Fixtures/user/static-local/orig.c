int counter_a(void) { static int calls; return ++calls; }
int counter_b(void) { static int calls; calls += 2; return calls; }
int sum(int x) { static int total; total += x; return total; }
