struct big { int a, b, c, d, e, f; };
static __attribute__((noinline)) int use_b(struct big *p) { return p->b * 2; }
static __attribute__((noinline)) int use_c(struct big *p) { return p->c * 3; }
int front(struct big *p) { return use_b(p) + use_c(p); }
