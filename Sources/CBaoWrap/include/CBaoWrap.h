// The only C in baowrap. Each function exists because Swift cannot call the
// underlying API directly (variadic or macro-based C interfaces), or because
// it must run before any Swift code (argv capture, allocator installation).
#ifndef CBAOWRAP_H
#define CBAOWRAP_H

#include <curl/curl.h>
#include <getopt.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

// MARK: process start

// argc/argv/envp as the kernel handed them over, captured from .init_array:
// a static glibc Swift binary without /proc would otherwise see no arguments.
int bw_argc(void);
char *const *bw_argv(void);
char *const *bw_envp(void);

// MARK: command line

struct option;
// getopt_long with its global state (optind, optarg, opterr) passed in and
// out, so Swift never touches C globals. `*next` is the argv index to scan
// from (0 restarts a scan) and is updated; `*arg` receives optarg; `*bad`
// receives the argv index of an unknown or incomplete option. Never prints.
int bw_getopt_long(int argc, char *const argv[], const char *shortopts,
                   const struct option *longopts, int *longindex,
                   int *next, const char **arg, int *bad);

// MARK: allocators

// Routes OpenSSL's heap allocations through an allocator that wipes every
// block on free and realloc, so no decrypted record, header or token copy
// lingers in freed heap memory, and settles that OpenSSL never reads its
// configuration file. Must run before any other OpenSSL call. Returns 0, or
// -1 if OpenSSL had already allocated.
int bw_install_wiping_allocators(void);

// Initialises libssl and libcurl (libcurl with the same wiping allocator).
// About 0.3 ms, so it runs only when OpenBao is contacted, before the first
// libcurl call; later calls do nothing. Returns 0 or -1.
int bw_tls_init(void);

// Number of blocks the wiping allocator has wiped (for tests and diagnostics).
unsigned long bw_wiped_blocks(void);

// MARK: curl (curl_easy_setopt, curl_easy_getinfo, curl_multi_setopt are variadic)

typedef size_t (*bw_write_fn)(char *ptr, size_t size, size_t nmemb, void *userdata);
typedef size_t (*bw_header_fn)(char *ptr, size_t size, size_t nmemb, void *userdata);

CURLcode bw_easy_setopt_long(CURL *h, CURLoption opt, long value);
CURLcode bw_easy_setopt_str(CURL *h, CURLoption opt, const char *value);
CURLcode bw_easy_setopt_ptr(CURL *h, CURLoption opt, void *value);
CURLcode bw_easy_setopt_off(CURL *h, CURLoption opt, curl_off_t value);
CURLcode bw_easy_setopt_slist(CURL *h, CURLoption opt, struct curl_slist *value);
CURLcode bw_easy_setopt_writefn(CURL *h, bw_write_fn fn);
CURLcode bw_easy_setopt_headerfn(CURL *h, bw_header_fn fn);
CURLcode bw_easy_getinfo_long(CURL *h, CURLINFO info, long *out);
CURLcode bw_easy_getinfo_str(CURL *h, CURLINFO info, char **out);
CURLcode bw_easy_getinfo_off(CURL *h, CURLINFO info, curl_off_t *out);
CURLcode bw_easy_getinfo_socket(CURL *h, CURLINFO info, curl_socket_t *out);
CURLMcode bw_multi_setopt_long(CURLM *m, CURLMoption opt, long value);
CURLSHcode bw_share_setopt_long(CURLSH *s, CURLSHoption opt, long value);
const char *bw_curl_version(void);
// Makes OpenSSL wipe each decrypted TLS record as soon as curl has read it
// (SSL_OP_CLEANSE_PLAINTEXT), through CURLOPT_SSL_CTX_FUNCTION.
CURLcode bw_easy_cleanse_plaintext(CURL *h);

// MARK: OpenSSL

const char *bw_openssl_version(void);
// SHA-256 of len bytes at data into out[32]; 0 on success.
int bw_sha256(const void *data, size_t len, unsigned char out[32]);

// MARK: prctl (variadic)

int bw_set_dumpable(int on);
int bw_get_dumpable(void);
int bw_set_child_subreaper(void);
int bw_get_no_new_privs(void);

// MARK: memory

void bw_explicit_bzero(void *p, size_t n);
// memfd_secret(2): -1 with errno ENOSYS where the kernel lacks it.
int bw_memfd_secret(void);

// Gives back what only the start needed, once the child runs: freed heap
// (malloc_trim) and the resident pages of the executable's code and
// read-only data, which are never written, so the kernel maps them again
// from the file if they are used again. While supervising, baowrap then
// holds a few hundred KiB instead of the ~8 MiB of code the start touched.
void bw_release_startup_memory(void);

// MARK: signals and processes

// Blocks every supervised signal (see below), stores the mask that was in
// effect before in *original (the child gets it back), and ignores
// SIGTTIN/SIGTTOU as tini does.
int bw_take_over_signals(sigset_t *original);
int bw_signalfd_read(int fd, int *signo, pid_t *sender);

// A non-blocking, close-on-exec signalfd for `mask`.
int bw_signalfd(const sigset_t *mask);
// Fills *set with every signal the supervisor takes over: all but the
// synchronous fault signals (SEGV, BUS, FPE, ILL, TRAP, SYS, ABRT), which
// must keep killing baowrap itself, and TTIN/TTOU, which it ignores.
void bw_supervised_signals(sigset_t *set);
int bw_sigismember(const sigset_t *set, int sig);
int bw_sigrtmin(void);
int bw_sigrtmax(void);

// posix_spawnp with the supervisor's contract: the child gets `mask` (the
// mask baowrap was started with) as its signal mask, default dispositions for
// every signal, its own process group, the terminal's foreground when
// `tty_fd` >= 0, and no fd above 2.
// Returns 0 or an errno value (exec failures included, as glibc reports them).
int bw_spawn(pid_t *pid, const char *file, char *const argv[], char *const envp[],
             const sigset_t *mask, int tty_fd);

// Build information baked in by the Makefile.
const char *bw_build_revision(void);

// waitpid status decoding (macros in C).
int bw_wifexited(int status);
int bw_wexitstatus(int status);
int bw_wifsignaled(int status);
int bw_wtermsig(int status);

#endif
