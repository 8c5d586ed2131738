/* The benchmark's workload. The first thing it does is read CLOCK_MONOTONIC,
 * so "time to exec" ends when the wrapper's child is running. It then writes
 * one line to FILE:
 *   TIMESTAMP_NS COUNT CHECKSUM VMRSS VMHWM RSSANON RSSFILE
 * COUNT is how many non-empty BENCH_S_* variables it got (a run only counts
 * when every secret arrived), CHECKSUM the sum of the FNV-1a hashes of their
 * values (wrong values are caught without the values being written
 * anywhere), and the rest its parent's memory in KiB from /proc: the
 * wrapper that supervises it (the benchmark itself when a script exec'ed
 * the workload). Static, so no dynamic loader runs before the timestamp.
 * Usage: stamp FILE [HOLD_MS]; HOLD_MS waits before looking at the parent,
 * so its memory is seen after start-up work (revocation, frees) is done. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long field_kib(const char *status, const char *name) {
    const char *p = strstr(status, name);
    return p ? strtol(p + strlen(name), NULL, 10) : 0;
}

int main(int argc, char **argv) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (argc < 2) return 2;
    unsigned count = 0;
    uint64_t sum = 0;
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, "BENCH_S_", 8) != 0) continue;
        const char *v = strchr(*e, '=');
        if (!v || !v[1]) continue;
        count++;
        uint64_t h = 1469598103934665603ULL;
        for (const unsigned char *c = (const unsigned char *)v + 1; *c; c++) h = (h ^ *c) * 1099511628211ULL;
        sum += h;
    }
    if (argc > 2) usleep((useconds_t)atoi(argv[2]) * 1000);

    char path[64], status[4096] = {0};
    snprintf(path, sizeof path, "/proc/%d/status", (int)getppid());
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, status, sizeof status - 1);
        status[n > 0 ? n : 0] = 0;
        close(fd);
    }
    FILE *f = fopen(argv[1], "w");
    if (!f) return 3;
    fprintf(f, "%lld %u %016llx %ld %ld %ld %ld\n", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec, count,
            (unsigned long long)sum, field_kib(status, "VmRSS:"), field_kib(status, "VmHWM:"),
            field_kib(status, "RssAnon:"), field_kib(status, "RssFile:"));
    return fclose(f) == 0 ? 0 : 3;
}
