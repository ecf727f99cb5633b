/* jujuc: the hook tools' thin client, as Juju's jujuc talks to its unit agent.
 *
 * Invoked as a tool name (relation-get, ...) or as "jujuc TOOL ARGS...". Sends the context
 * id, the working directory, the tool name and its arguments over the Unix socket named by
 * JUJU_AGENT_SOCKET_ADDRESS ("@name": abstract) to the model's server
 * (tests/jujurules/server.py), sends stdin only when the server asks for it, and prints the
 * server's stdout and stderr and exits with its code. Wire format: see server.py.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void die(const char *msg) {
    fprintf(stderr, "ERROR %s: %s\n", msg, strerror(errno));
    exit(1);
}

static void put_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            die("cannot write to the hook-tool server");
        }
        p += w;
        n -= (size_t)w;
    }
}

static void get_all(int fd, void *buf, size_t n) {
    char *p = buf;
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            errno = r ? errno : EPIPE;
            die("cannot read from the hook-tool server");
        }
        p += r;
        n -= (size_t)r;
    }
}

static void put_u32(int fd, uint32_t v) {
    unsigned char b[4] = {v & 255, (v >> 8) & 255, (v >> 16) & 255, (v >> 24) & 255};
    put_all(fd, b, 4);
}

static uint32_t get_u32(int fd) {
    unsigned char b[4];
    get_all(fd, b, 4);
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static void put_str(int fd, const char *s) {
    size_t n = strlen(s);
    put_u32(fd, (uint32_t)n);
    put_all(fd, s, n);
}

static void copy_out(int fd, FILE *to) {
    uint32_t n = get_u32(fd);
    char buf[65536];
    while (n) {
        size_t k = n < sizeof buf ? n : sizeof buf;
        get_all(fd, buf, k);
        fwrite(buf, 1, k, to);
        n -= (uint32_t)k;
    }
    fflush(to);
}

int main(int argc, char **argv) {
    const char *name = strrchr(argv[0], '/');
    name = name ? name + 1 : argv[0];
    int first = 1;
    if (strcmp(name, "jujuc") == 0) {
        name = argc > 1 ? argv[1] : "";
        first = 2;
    }
    const char *ctx = getenv("JUJU_CONTEXT_ID");
    const char *addr = getenv("JUJU_AGENT_SOCKET_ADDRESS");
    if (!ctx || !*ctx) {
        fputs("ERROR JUJU_CONTEXT_ID not set: hook tools only work in a hook\n", stderr);
        return 1;
    }
    if (!addr || !*addr) {
        fputs("ERROR JUJU_AGENT_SOCKET_ADDRESS not set\n", stderr);
        return 1;
    }
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t alen = strlen(addr);
    if (alen >= sizeof sa.sun_path) {
        fputs("ERROR JUJU_AGENT_SOCKET_ADDRESS too long\n", stderr);
        return 1;
    }
    memcpy(sa.sun_path, addr, alen);
    socklen_t slen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + alen);
    if (addr[0] == '@') sa.sun_path[0] = '\0';
    else slen += 1;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, slen) < 0)
        die("cannot connect to the hook-tool server");
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) cwd[0] = '\0';
    put_all(fd, "JJC1", 4);
    put_u32(fd, (uint32_t)(3 + argc - first));
    put_str(fd, ctx);
    put_str(fd, cwd);
    put_str(fd, name);
    for (int i = first; i < argc; i++) put_str(fd, argv[i]);
    for (;;) {
        char kind;
        get_all(fd, &kind, 1);
        if (kind == 'I') { /* the tool reads stdin (--file -) */
            size_t cap = 65536, len = 0;
            char *buf = malloc(cap);
            ssize_t r;
            while (buf && (r = read(0, buf + len, cap - len)) != 0) {
                if (r < 0) {
                    if (errno == EINTR) continue;
                    break;
                }
                len += (size_t)r;
                if (len == cap) buf = realloc(buf, cap *= 2);
            }
            if (!buf) die("out of memory");
            put_u32(fd, (uint32_t)len);
            put_all(fd, buf, len);
            free(buf);
            continue;
        }
        if (kind != 'R') {
            fputs("ERROR bad reply from the hook-tool server\n", stderr);
            return 1;
        }
        uint32_t rc = get_u32(fd);
        copy_out(fd, stdout);
        copy_out(fd, stderr);
        return (int)rc;
    }
}
