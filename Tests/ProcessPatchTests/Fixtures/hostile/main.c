// SPDX-License-Identifier: GPL-2.0-only
// A hostile target for `suture process status` and `revert`: it maps a
// memfd named like a Suture patch area and writes into it the state that
// the test names on the command line, then prints "ready" and sleeps.
//   hostile negative-range | huge-description | table-overflow |
//           control-characters | huge-sequence | foreign-function
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "control-characters";
    size_t size = 64 * 4096;
    if (strcmp(mode, "huge-description") == 0)
        size = (size_t)320 << 20; /* sparse: only the header page is touched */
    int fd = memfd_create("suture:1:hostile", 0);
    if (fd < 0 || ftruncate(fd, (off_t)size) != 0) { perror("memfd"); return 1; }
    unsigned char *area = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (area == MAP_FAILED) { perror("mmap"); return 1; }
    uint64_t start = (uint64_t)(uintptr_t)area;
    uint64_t text = start + 8192, data = start + 16384;
    uint64_t table = 32 * 4096, holders = 48 * 4096;
    char json[4096];
    const char *name = "hostile";
    long long sequence = 1;
    long long text_lo = (long long)text, text_hi = (long long)data;
    char functions[1024] = "";
    if (strcmp(mode, "negative-range") == 0) text_lo = -4096;
    if (strcmp(mode, "control-characters") == 0) name = "\\u001b]0;owned\\u0007\\u001b[2J\\n  #2 forged  applied";
    if (strcmp(mode, "huge-sequence") == 0) sequence = 1LL << 40;
    if (strcmp(mode, "table-overflow") == 0) table = UINT64_MAX - 4;
    if (strcmp(mode, "foreign-function") == 0)
        /* A "function" at an address the process does not map. */
        snprintf(functions, sizeof functions,
                 "{\"name\":\"f\",\"address\":%lld,\"size\":16,\"newAddress\":%llu,\"newSize\":16,"
                 "\"dispatcher\":%llu,\"dispatcherSize\":16,\"original\":\"0000000000\","
                 "\"viaDispatcher\":\"0000000000\",\"direct\":\"0000000000\"}",
                 -8LL, (unsigned long long)text, (unsigned long long)text + 16);
    int n = snprintf(json, sizeof json,
                     "{\"name\":\"%s\",\"sequence\":%lld,\"digest\":\"\",\"patch\":\"/tmp/p.o\",\"model\":\"stop-check\","
                     "\"appliedAt\":\"2026-01-01T00:00:00Z\",\"object\":\"/bin/hostile\",\"buildID\":\"\","
                     "\"text\":[%lld,%lld],\"data\":[%llu,%llu],\"functions\":[%s],\"unwind\":[]}",
                     name, sequence, text_lo, text_hi, (unsigned long long)data, (unsigned long long)(data + 4096),
                     functions);
    uint32_t header = 8192;
    memcpy(area + 64, json, (size_t)n);
    put32(area + 8, 1);
    put32(area + 12, header);
    area[16] = 1; area[17] = 0; area[18] = 2;
    put32(area + 20, (uint32_t)sequence);
    put32(area + 24, 64);
    put32(area + 28, (uint32_t)n);
    put64(area + 32, size);
    put64(area + 40, table);
    put32(area + 48, 64);
    put32(area + 52, 0);
    put64(area + 56, holders);
    if (strcmp(mode, "huge-description") == 0) {
        put32(area + 12, (uint32_t)(300u << 20) + 4096);
        put32(area + 28, 300u << 20);
    }
    memcpy(area, "SUTUREPA", 8);
    printf("ready\n");
    fflush(stdout);
    for (;;) pause();
}
