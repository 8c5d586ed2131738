/* The physical-limit client: what any client pays to fetch N secrets once
 * its TLS connections to OpenBao are open. It keeps its connections warm
 * across measurements and times only one kubernetes login plus the reads,
 * at most 16 in flight, a new one as soon as one finishes (so ceil(N/16)
 * rounds or better). No process start, no TLS set-up, no mount lookup, no
 * revocation: those are what a fresh process has to add.
 *
 * Transports, chosen per measurement:
 *   h1  HTTP/1.1 on 16 keep-alive connections opened beforehand;
 *   h2  one HTTP/2 connection, the reads multiplexed on it;
 *   i1, i2  the same, but with OpenBao's inline auth: no login request,
 *       every read carries the login and is one.
 * It links Debian's shared libcurl, which has HTTP/2 (nghttp2).
 *
 * Protocol: one command per stdin line, one answer per stdout line.
 *   "MODE N PATHS"  ->  "ok LOGIN_NS READS_NS" or "error TEXT"
 * The reads are secret/data/many/p000.. on PATHS distinct paths: one read
 * per distinct path, as every contender does for N secrets on PATHS paths.
 * Usage: limit ADDR CA_FILE JWT_FILE ROLE */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WIDTH 16
#define MAX_PATHS 100

struct slot {
    CURL *h;
    struct curl_slist *headers;
    char url[512];
    char body[65536];
    size_t len;
};

static struct slot slots[WIDTH];
static const char *addr, *ca;
static char login_body[20000];
/* OpenBao inline auth: these headers make a request its own login. */
static char inline_path[] = "X-Vault-Inline-Auth-Path: auth/kubernetes/login";
static char inline_role[512], inline_jwt[24000];

static size_t sink(char *p, size_t size, size_t n, void *ud) {
    struct slot *s = ud;
    size_t c = size * n;
    if (s->len + c >= sizeof s->body) return 0;
    memcpy(s->body + s->len, p, c);
    s->len += c;
    s->body[s->len] = 0;
    return c;
}

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void base64url(const char *in, char *out) {
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n = strlen(in), o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)in[i] << 16;
        if (i + 1 < n) v |= (unsigned char)in[i + 1] << 8;
        if (i + 2 < n) v |= (unsigned char)in[i + 2];
        out[o++] = t[(v >> 18) & 63];
        out[o++] = t[(v >> 12) & 63];
        if (i + 1 < n) out[o++] = t[(v >> 6) & 63];
        if (i + 2 < n) out[o++] = t[v & 63];
    }
    out[o] = 0;
}

enum auth { NONE, TOKEN, INLINE };

static void prepare(struct slot *s, int h2, const char *path, enum auth auth, const char *token, const char *post) {
    CURL *h = s->h;
    curl_easy_reset(h);
    s->len = 0;
    curl_slist_free_all(s->headers);
    s->headers = curl_slist_append(NULL, "Expect:");
    snprintf(s->url, sizeof s->url, "%s%s", addr, path);
    curl_easy_setopt(h, CURLOPT_URL, s->url);
    curl_easy_setopt(h, CURLOPT_CAINFO, ca);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(h, CURLOPT_PRIVATE, s);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, h2 ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_PIPEWAIT, h2 ? 1L : 0L);
    if (auth == INLINE) {
        s->headers = curl_slist_append(s->headers, inline_path);
        s->headers = curl_slist_append(s->headers, inline_role);
        s->headers = curl_slist_append(s->headers, inline_jwt);
    } else if (auth == TOKEN) {
        char line[512];
        snprintf(line, sizeof line, "X-Vault-Token: %s", token);
        s->headers = curl_slist_append(s->headers, line);
    }
    if (post) {
        s->headers = curl_slist_append(s->headers, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, post);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, s->headers);
}

/* Sends `count` requests for paths[i] (all POST `post` when it is set), at
 * most WIDTH in flight. Returns how many did not answer 200; the body of
 * the last one to finish is copied to `last` when it is set. */
static int run(CURLM *multi, int h2, char **paths, int count, enum auth auth, const char *token,
               const char *post, char *last, size_t last_size) {
    int next = 0, active = 0, failed = 0, nfree = WIDTH;
    int free_slots[WIDTH];
    for (int i = 0; i < WIDTH; i++) free_slots[i] = i;
    while (next < count || active > 0) {
        while (next < count && nfree > 0) {
            struct slot *s = &slots[free_slots[--nfree]];
            prepare(s, h2, paths[next++], auth, token, post);
            curl_multi_add_handle(multi, s->h);
            active++;
        }
        int running, left;
        curl_multi_perform(multi, &running);
        CURLMsg *m;
        while ((m = curl_multi_info_read(multi, &left))) {
            if (m->msg != CURLMSG_DONE) continue;
            struct slot *s;
            long code = 0;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
            if (m->data.result != CURLE_OK || code != 200) failed++;
            if (last) snprintf(last, last_size, "%s", s->body);
            curl_multi_remove_handle(multi, m->easy_handle);
            free_slots[nfree++] = (int)(s - slots);
            active--;
        }
        if (active > 0) curl_multi_poll(multi, NULL, 0, 1000, NULL);
    }
    return failed;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: limit ADDR CA_FILE JWT_FILE ROLE\n");
        return 2;
    }
    addr = argv[1];
    ca = argv[2];
    const char *role = argv[4];
    static char jwt[16384], field[20000];
    FILE *jf = fopen(argv[3], "r");
    if (!jf) return 2;
    jwt[fread(jwt, 1, sizeof jwt - 1, jf)] = 0;
    fclose(jf);
    snprintf(login_body, sizeof login_body, "{\"role\":\"%s\",\"jwt\":\"%s\"}", role, jwt);
    snprintf(field, sizeof field, "{\"key\":\"role\",\"value\":\"%s\"}", role);
    strcpy(inline_role, "X-Vault-Inline-Auth-Parameter-role: ");
    base64url(field, inline_role + strlen(inline_role));
    snprintf(field, sizeof field, "{\"key\":\"jwt\",\"value\":\"%s\"}", jwt);
    strcpy(inline_jwt, "X-Vault-Inline-Auth-Parameter-jwt: ");
    base64url(field, inline_jwt + strlen(inline_jwt));

    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *multi[2];
    for (int t = 0; t < 2; t++) {
        multi[t] = curl_multi_init();
        curl_multi_setopt(multi[t], CURLMOPT_MAXCONNECTS, 2L * WIDTH);
        curl_multi_setopt(multi[t], CURLMOPT_PIPELINING, t ? CURLPIPE_MULTIPLEX : CURLPIPE_NOTHING);
    }
    for (int i = 0; i < WIDTH; i++) slots[i].h = curl_easy_init();

    /* Open the connections: 16 for HTTP/1.1, one for HTTP/2. */
    char *health[WIDTH];
    for (int i = 0; i < WIDTH; i++) health[i] = "/v1/sys/health";
    for (int t = 0; t < 2; t++) {
        if (run(multi[t], t, health, WIDTH, NONE, NULL, NULL, NULL, 0)) {
            fprintf(stderr, "limit: warm-up requests failed\n");
            return 1;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);

    static char paths_buf[MAX_PATHS][40], answer[65536];
    char *paths[MAX_PATHS], *login_path[] = {"/v1/auth/kubernetes/login"},
                           *revoke_path[] = {"/v1/auth/token/revoke-self"};
    for (int i = 0; i < MAX_PATHS; i++) {
        snprintf(paths_buf[i], sizeof paths_buf[i], "/v1/secret/data/many/p%03d", i);
        paths[i] = paths_buf[i];
    }
    char line[256];
    while (fgets(line, sizeof line, stdin)) {
        char mode[4];
        int n, distinct;
        if (sscanf(line, "%3s %d %d", mode, &n, &distinct) != 3 || distinct < 1 || distinct > MAX_PATHS ||
            n < distinct || (mode[0] != 'h' && mode[0] != 'i') || (mode[1] != '1' && mode[1] != '2')) {
            printf("error bad command\n");
            continue;
        }
        int h2 = mode[1] == '2';
        if (mode[0] == 'i') {
            long long t0 = now_ns();
            int failed = run(multi[h2], h2, paths, distinct, INLINE, NULL, NULL, NULL, 0);
            long long t1 = now_ns();
            if (failed) printf("error %d inline reads failed\n", failed);
            else printf("ok 0 %lld\n", t1 - t0);
            continue;
        }
        long long t0 = now_ns();
        if (run(multi[h2], h2, login_path, 1, NONE, NULL, login_body, answer, sizeof answer)) {
            printf("error login failed\n");
            continue;
        }
        long long t1 = now_ns();
        char token[256] = {0};
        char *p = strstr(answer, "\"client_token\":\"");
        if (!p || sscanf(p + 16, "%255[^\"]", token) != 1) {
            printf("error no token in the login answer\n");
            continue;
        }
        int failed = run(multi[h2], h2, paths, distinct, TOKEN, token, NULL, NULL, 0);
        long long t2 = now_ns();
        if (failed) printf("error %d reads failed\n", failed);
        else printf("ok %lld %lld\n", t1 - t0, t2 - t1);
        /* Untimed: leave no token behind, as the wrappers do. */
        run(multi[h2], h2, revoke_path, 1, TOKEN, token, "", NULL, 0);
    }
    return 0;
}
