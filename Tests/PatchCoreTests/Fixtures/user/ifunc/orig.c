static int impl_plain(int x) { return x + 1; }
static int (*resolve_add(void))(int) { return impl_plain; }
int add_one(int x) __attribute__((ifunc("resolve_add")));
