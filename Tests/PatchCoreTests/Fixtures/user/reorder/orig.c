static int square(int x) { return x * x; }
static int cube(int x) { return x * x * x; }
int both(int x) { return square(x) + cube(x); }
