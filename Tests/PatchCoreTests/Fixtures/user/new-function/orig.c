int compute(int x) { return x * 3 + 1; }
int unrelated(int y) { return y - 7; }
