#include <stdio.h>
void first(void) { puts("first message"); }
void second(void) { puts("second message"); }
