#include "CBaoWrap.h"

#include <errno.h>
#include <getopt.h>
#include <link.h>
#include <malloc.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

// MARK: process start

static int g_argc;
static char *const *g_argv;
static char *const *g_envp;

static void bw_capture(int argc, char **argv, char **envp) {
    g_argc = argc;
    g_argv = argv;
    g_envp = envp;
}
__attribute__((section(".init_array"), used))
static void (*bw_capture_p)(int, char **, char **) = bw_capture;

// The Swift runtime's backtracer initialiser looks for its helper next to
// the runtime via /proc/self/exe and aborts the process when that fails: a
// static binary in a chroot or image without /proc would die before main.
// No pod has the helper anyway, so baowrap turns the backtracer off before
// any initialiser runs (.preinit_array precedes every .init_array entry).
// The child's environment is built from the kernel's original envp, so
// this variable never reaches it.
static void bw_disable_backtracer(int argc, char **argv, char **envp) {
    (void)argc; (void)argv;
    // setenv overwrites an existing entry in place: on the kernel's array it
    // would rewrite the workload's own SWIFT_BACKTRACE, so environ gets its
    // own copy of the pointers first.
    size_t n = 0;
    while (envp[n]) n++;
    char **copy = malloc((n + 1) * sizeof *copy);
    if (copy == NULL) return;
    memcpy(copy, envp, (n + 1) * sizeof *copy);
    environ = copy;
    setenv("SWIFT_BACKTRACE", "enable=no,swift-backtrace=/dev/null", 1);
}
__attribute__((section(".preinit_array"), used))
static void (*bw_disable_backtracer_p)(int, char **, char **) = bw_disable_backtracer;

int bw_argc(void) { return g_argc; }
char *const *bw_argv(void) { return g_argv; }
char *const *bw_envp(void) { return g_envp; }

// MARK: command line

int bw_getopt_long(int argc, char *const argv[], const char *shortopts,
                   const struct option *longopts, int *longindex,
                   int *next, const char **arg, int *bad) {
    opterr = 0;
    optind = *next;
    optarg = NULL;
    int c = getopt_long(argc, argv, shortopts, longopts, longindex);
    *next = optind;
    *arg = optarg;
    *bad = (c == '?' || c == ':') ? optind - 1 : -1;
    return c;
}

// MARK: allocators

static atomic_ulong g_wiped;

static void wipe_block(void *p) {
    if (p == NULL) return;
    // malloc_usable_size covers the whole block, including slack a previous
    // larger content may have used.
    explicit_bzero(p, malloc_usable_size(p));
    atomic_fetch_add_explicit(&g_wiped, 1, memory_order_relaxed);
}

static void *w_malloc(size_t n) { return malloc(n); }
static void w_free(void *p) { wipe_block(p); free(p); }
static void *w_calloc(size_t count, size_t n) { return calloc(count, n); }
static char *w_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}
// realloc may move the block and free the old copy without wiping it, so it
// is rebuilt from malloc + copy + wiped free.
static void *w_realloc(void *p, size_t n) {
    if (p == NULL) return malloc(n);
    if (n == 0) { w_free(p); return NULL; }
    size_t old = malloc_usable_size(p);
    if (old >= n) return p;
    void *q = malloc(n);
    if (q == NULL) return NULL;
    memcpy(q, p, old);
    w_free(p);
    return q;
}

static void *o_malloc(size_t n, const char *file, int line) { (void)file; (void)line; return w_malloc(n); }
static void *o_realloc(void *p, size_t n, const char *file, int line) { (void)file; (void)line; return w_realloc(p, n); }
static void o_free(void *p, const char *file, int line) { (void)file; (void)line; w_free(p); }

int bw_install_wiping_allocators(void) {
    if (!CRYPTO_set_mem_functions(o_malloc, o_realloc, o_free)) return -1;
    // Never read openssl.cnf (OPENSSL_CONF, /usr/lib/ssl/openssl.cnf): the
    // workload's image could carry one that weakens TLS. libcurl is also
    // built with --disable-openssl-auto-load-config; settling it here holds
    // for every OpenSSL call, the ones before libcurl's included.
    return OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL) ? 0 : -1;
}

int bw_tls_init(void) {
    static int done;  // main thread only
    if (done) return 0;
    if (!OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG, NULL)) return -1;
    if (curl_global_init_mem(CURL_GLOBAL_SSL, w_malloc, w_free, w_realloc, w_strdup, w_calloc) != CURLE_OK)
        return -1;
    done = 1;
    return 0;
}

unsigned long bw_wiped_blocks(void) { return atomic_load(&g_wiped); }

// MARK: curl

CURLcode bw_easy_setopt_long(CURL *h, CURLoption opt, long value) { return curl_easy_setopt(h, opt, value); }
CURLcode bw_easy_setopt_str(CURL *h, CURLoption opt, const char *value) { return curl_easy_setopt(h, opt, value); }
CURLcode bw_easy_setopt_ptr(CURL *h, CURLoption opt, void *value) { return curl_easy_setopt(h, opt, value); }
CURLcode bw_easy_setopt_off(CURL *h, CURLoption opt, curl_off_t value) { return curl_easy_setopt(h, opt, value); }
CURLcode bw_easy_setopt_slist(CURL *h, CURLoption opt, struct curl_slist *value) { return curl_easy_setopt(h, opt, value); }
CURLcode bw_easy_setopt_writefn(CURL *h, bw_write_fn fn) { return curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, fn); }
CURLcode bw_easy_setopt_headerfn(CURL *h, bw_header_fn fn) { return curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, fn); }
CURLcode bw_easy_getinfo_long(CURL *h, CURLINFO info, long *out) { return curl_easy_getinfo(h, info, out); }
CURLcode bw_easy_getinfo_str(CURL *h, CURLINFO info, char **out) { return curl_easy_getinfo(h, info, out); }
CURLcode bw_easy_getinfo_off(CURL *h, CURLINFO info, curl_off_t *out) { return curl_easy_getinfo(h, info, out); }
CURLcode bw_easy_getinfo_socket(CURL *h, CURLINFO info, curl_socket_t *out) { return curl_easy_getinfo(h, info, out); }
CURLMcode bw_multi_setopt_long(CURLM *m, CURLMoption opt, long value) { return curl_multi_setopt(m, opt, value); }
CURLSHcode bw_share_setopt_long(CURLSH *s, CURLSHoption opt, long value) { return curl_share_setopt(s, opt, value); }
const char *bw_curl_version(void) { return curl_version_info(CURLVERSION_NOW)->version; }

static CURLcode cleanse_ctx(CURL *h, void *ctx, void *userdata) {
    (void)h; (void)userdata;
    SSL_CTX_set_options((SSL_CTX *)ctx, SSL_OP_CLEANSE_PLAINTEXT);
    return CURLE_OK;
}

CURLcode bw_easy_cleanse_plaintext(CURL *h) { return curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, cleanse_ctx); }

// MARK: OpenSSL

const char *bw_openssl_version(void) { return OpenSSL_version(OPENSSL_VERSION); }

int bw_sha256(const void *data, size_t len, unsigned char out[32]) {
    return EVP_Digest(data, len, out, NULL, EVP_sha256(), NULL) == 1 ? 0 : -1;
}

// MARK: prctl

int bw_set_dumpable(int on) { return prctl(PR_SET_DUMPABLE, on ? 1 : 0, 0, 0, 0); }
int bw_get_dumpable(void) { return prctl(PR_GET_DUMPABLE, 0, 0, 0, 0); }
int bw_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }
int bw_get_no_new_privs(void) { return prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); }

// MARK: memory

void bw_explicit_bzero(void *p, size_t n) { explicit_bzero(p, n); }

int bw_memfd_secret(void) {
#ifdef SYS_memfd_secret
    return (int)syscall(SYS_memfd_secret, 0);
#else
    return (int)syscall(447, 0);
#endif
}

static int release_code_pages(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size; (void)data;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || (ph->p_flags & PF_W) || !(ph->p_flags & PF_X)) continue;
        // Whole pages inside the segment only: an edge page may belong to a
        // writable mapping as well.
        uintptr_t start = (info->dlpi_addr + ph->p_vaddr + page - 1) & ~(page - 1);
        uintptr_t end = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz) & ~(page - 1);
        if (end > start) madvise((void *)start, end - start, MADV_DONTNEED);
    }
    return 1;  // the executable is the first object; nothing else is mapped
}

void bw_release_startup_memory(void) {
    malloc_trim(0);
    dl_iterate_phdr(release_code_pages, NULL);
}

// MARK: signals and processes

int bw_signalfd(const sigset_t *mask) { return signalfd(-1, mask, SFD_CLOEXEC | SFD_NONBLOCK); }

int bw_take_over_signals(sigset_t *original) {
    sigset_t set;
    bw_supervised_signals(&set);
    if (sigprocmask(SIG_BLOCK, &set, original)) return -1;
    // TOSTOP on the terminal would stop baowrap on its own log writes while
    // the child holds the foreground; tini ignores these for the same reason.
    struct sigaction ign = { .sa_handler = SIG_IGN };
    sigemptyset(&ign.sa_mask);
    if (sigaction(SIGTTIN, &ign, NULL) || sigaction(SIGTTOU, &ign, NULL)) return -1;
    return 0;
}

int bw_signalfd_read(int fd, int *signo, pid_t *sender) {
    struct signalfd_siginfo si;
    ssize_t n = read(fd, &si, sizeof si);
    if (n != (ssize_t)sizeof si) return -1;
    *signo = (int)si.ssi_signo;
    *sender = (pid_t)si.ssi_pid;
    return 0;
}

void bw_supervised_signals(sigset_t *set) {
    sigfillset(set);
    static const int keep[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT, SIGTTIN, SIGTTOU };
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) sigdelset(set, keep[i]);
}

int bw_sigismember(const sigset_t *set, int sig) { return sigismember(set, sig); }
int bw_sigrtmin(void) { return SIGRTMIN; }
int bw_sigrtmax(void) { return SIGRTMAX; }

int bw_spawn(pid_t *pid, const char *file, char *const argv[], char *const envp[],
             const sigset_t *mask, int tty_fd) {
    posix_spawnattr_t attr;
    posix_spawn_file_actions_t actions;
    int rc = posix_spawnattr_init(&attr);
    if (rc) return rc;
    rc = posix_spawn_file_actions_init(&actions);
    if (rc) { posix_spawnattr_destroy(&attr); return rc; }

    // Every disposition back to default, glibc's internal signals (32, 33)
    // included: sigfillset leaves them out, and glibc's spawn helper then
    // sets them to SIG_IGN, which exec passes on to the workload.
    sigset_t all;
    memset(&all, 0xff, sizeof all);
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP;
    if (!rc) rc = posix_spawnattr_setflags(&attr, flags);
    if (!rc) rc = posix_spawnattr_setsigmask(&attr, mask);
    if (!rc) rc = posix_spawnattr_setsigdefault(&attr, &all);
    if (!rc) rc = posix_spawnattr_setpgroup(&attr, 0);
    // glibc runs file actions after setpgid and while every signal is still
    // blocked in the child, so tcsetpgrp cannot be stopped by SIGTTOU.
    if (!rc && tty_fd >= 0) rc = posix_spawn_file_actions_addtcsetpgrp_np(&actions, tty_fd);
    if (!rc) rc = posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    if (!rc) rc = posix_spawnp(pid, file, &actions, &attr, argv, envp);

    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    return rc;
}

#ifndef BW_BUILD_REVISION
#define BW_BUILD_REVISION "unknown"
#endif
const char *bw_build_revision(void) { return BW_BUILD_REVISION; }

int bw_wifexited(int status) { return WIFEXITED(status); }
int bw_wexitstatus(int status) { return WEXITSTATUS(status); }
int bw_wifsignaled(int status) { return WIFSIGNALED(status); }
int bw_wtermsig(int status) { return WTERMSIG(status); }
