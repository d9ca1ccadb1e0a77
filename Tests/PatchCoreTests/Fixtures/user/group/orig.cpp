inline int shared_scale(int x) { return x * 7; }
int use_scale(int a) { return shared_scale(a) + 1; }
int (*keep)(int) = shared_scale;
