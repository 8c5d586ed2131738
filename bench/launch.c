/* Starts one contender and reports when and how it ran. It reads
 * CLOCK_MONOTONIC just before posix_spawn, waits for the contender, and
 * prints one line:
 *   START_NS END_NS EXIT_CODE MAXRSS_KIB
 * END_NS is when the wait returned; EXIT_CODE is 128+N for a signal N;
 * MAXRSS_KIB is the contender's ru_maxrss (the largest of it and the
 * descendants it waited for). The benchmark does not spawn contenders
 * itself because the kernel charges the spawning process's RSS to the
 * child's ru_maxrss (posix_spawn runs the child in the parent's memory
 * until exec): Python's 18 MB would hide every wrapper's peak. This
 * launcher is small and static, so the figure is the contender's own.
 * The contender's stdin and stdout are /dev/null; stderr is inherited.
 * Usage: launch COMMAND [ARG...] */
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: launch COMMAND [ARG...]\n");
        return 2;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    long long start = now_ns();
    int rc = posix_spawn(&pid, argv[1], &actions, NULL, argv + 1, environ);
    if (rc != 0) {
        fprintf(stderr, "launch: cannot start %s\n", argv[1]);
        return 2;
    }
    int status;
    struct rusage usage;
    if (wait4(pid, &status, 0, &usage) != pid) return 2;
    long long end = now_ns();
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    printf("%lld %lld %d %ld\n", start, end, code, usage.ru_maxrss);
    return 0;
}
