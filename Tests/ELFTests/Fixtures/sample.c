// SPDX-License-Identifier: GPL-2.0-only
// A small program with the features the ELF tests look for: functions and
// data in their own sections, static locals, strings, TLS, weak and common
// symbols, and calls to external functions.
#include <stdio.h>
#include <string.h>

int counter = 3;
const char *greeting = "hello, suture";
static int hidden_table[16] = {1, 2, 3};
__thread int per_thread = 7;
int common_symbol;
__attribute__((weak)) int weak_hook(int x) { return x + 1; }

static int bump(void) {
    static int calls;
    return ++calls + hidden_table[calls & 15];
}

int process(const char *text) {
    static int calls;
    calls++;
    per_thread += calls;
    return (int)strlen(text) + bump() + weak_hook(counter) + common_symbol;
}

void report(void) {
    printf("%s %d\n", greeting, process("report"));
}

#ifdef WITH_MAIN
int main(void) {
    report();
    return 0;
}
#endif
