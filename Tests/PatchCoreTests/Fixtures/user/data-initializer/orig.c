int limit = 10;
static const int table[4] = {1, 2, 3, 4};
int check(int x) { return x < limit ? table[x & 3] : 0; }
