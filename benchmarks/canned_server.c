/* The canned OpenAI-compatible server of `make bench`: prebuilt HTTP replies copied to sockets.
 *
 * Usage: canned_server DIR. DIR holds the whole replies (status line, headers, body) written by
 * benchmarks/server.py: chat, stream, embeddings, models, health, not_found. It listens on
 * 127.0.0.1 on a free port, prints the port, and serves HTTP/1.1 keep-alive connections with
 * one epoll loop until its stdin closes. Written in C because the asyncio server cost 32 us of
 * CPU per sequential request (18 us of it Python), too close to the cheapest client's ~300 us
 * for the clients alone to decide the figures.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { CHAT, STREAM, EMBEDDINGS, MODELS, HEALTH, NOT_FOUND, REPLIES };
static const char *NAMES[REPLIES] = {"chat", "stream", "embeddings", "models", "health", "not_found"};
static char *reply[REPLIES];
static size_t reply_size[REPLIES];

struct connection {
    int fd;
    char *in;          /* bytes received and not yet answered */
    size_t in_size, in_capacity;
    const char *out;   /* the reply being written, and how much of it is left */
    size_t out_left;
    int queued;        /* answers owed to pipelined requests behind the one being written */
    int queue[64];
};

static void die(const char *what) { perror(what); exit(1); }

static void load(const char *dir) {
    char path[4096];
    for (int i = 0; i < REPLIES; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, NAMES[i]);
        FILE *f = fopen(path, "rb");
        if (!f) die(path);
        fseek(f, 0, SEEK_END);
        reply_size[i] = (size_t)ftell(f);
        fseek(f, 0, SEEK_SET);
        reply[i] = malloc(reply_size[i]);
        if (fread(reply[i], 1, reply_size[i], f) != reply_size[i]) die(path);
        fclose(f);
    }
}

static int ends_with(const char *path, size_t length, const char *suffix) {
    size_t n = strlen(suffix);
    return length >= n && memcmp(path + length - n, suffix, n) == 0;
}

/* The reply to one request: the same routing as benchmarks/server.py's `answer`. */
static int route(const char *head, size_t head_size, const char *body, size_t body_size) {
    const char *space = memchr(head, ' ', head_size);
    if (!space) return NOT_FOUND;
    int post = space - head == 4 && memcmp(head, "POST", 4) == 0;
    const char *path = space + 1;
    const char *end = memchr(path, ' ', head_size - (size_t)(path - head));
    size_t length = end ? (size_t)(end - path) : 0;
    if (post && ends_with(path, length, "/chat/completions")) {
        int streamed = memmem(body, body_size, "\"stream\":true", 13) != NULL
                    || memmem(body, body_size, "\"stream\": true", 14) != NULL;
        return streamed ? STREAM : CHAT;
    }
    if (post && ends_with(path, length, "/embeddings")) return EMBEDDINGS;
    if (ends_with(path, length, "/models")) return MODELS;
    if (ends_with(path, length, "/health")) return HEALTH;
    return NOT_FOUND;
}

static size_t content_length(const char *head, size_t head_size) {
    const char *line = memchr(head, '\n', head_size);
    while (line && (size_t)(line - head) < head_size) {
        line++;
        size_t left = head_size - (size_t)(line - head);
        if (left > 15 && strncasecmp(line, "content-length:", 15) == 0)
            return (size_t)strtoul(line + 15, NULL, 10);
        line = memchr(line, '\n', left);
    }
    return 0;
}

static int epoll;

/* Watch `c` for room to write only while a reply waits for it: an always-armed EPOLLOUT
 * would wake the loop after every send. */
static void want_out(struct connection *c, int wanted) {
    struct epoll_event watch = {.events = EPOLLIN | (wanted ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(epoll, EPOLL_CTL_MOD, c->fd, &watch);
}

/* Write what can be written; 0 when the connection is to be dropped. */
static int flush(struct connection *c) {
    for (;;) {
        while (c->out_left) {
            ssize_t sent = send(c->fd, c->out, c->out_left, MSG_NOSIGNAL);
            if (sent < 0 && errno == EAGAIN) {
                want_out(c, 1);
                return 1;
            }
            if (sent < 0) return 0;
            c->out += sent;
            c->out_left -= (size_t)sent;
        }
        if (!c->queued) {
            want_out(c, 0);
            return 1;
        }
        int next = c->queue[0];
        memmove(c->queue, c->queue + 1, sizeof(int) * (size_t)--c->queued);
        c->out = reply[next];
        c->out_left = reply_size[next];
    }
}

/* Answer every whole request received; 0 when the connection is to be dropped. */
static int serve(struct connection *c) {
    size_t used = 0;
    for (;;) {
        char *head = c->in + used;
        size_t left = c->in_size - used;
        char *blank = memmem(head, left, "\r\n\r\n", 4);
        if (!blank) break;
        size_t head_size = (size_t)(blank - head);
        size_t body_size = content_length(head, head_size);
        if (left < head_size + 4 + body_size) break;
        int answer = route(head, head_size, blank + 4, body_size);
        if (c->out_left == 0 && c->queued == 0) {
            c->out = reply[answer];
            c->out_left = reply_size[answer];
        } else if (c->queued < 64) {
            c->queue[c->queued++] = answer;
        } else {
            return 0;
        }
        used += head_size + 4 + body_size;
    }
    memmove(c->in, c->in + used, c->in_size - used);
    c->in_size -= used;
    return flush(c);
}

static void drop(struct connection *c) {
    epoll_ctl(epoll, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->in);
    free(c);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    load(argv[1]);
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (listener < 0) die("socket");
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t size = sizeof address;
    if (bind(listener, (struct sockaddr *)&address, sizeof address) < 0) die("bind");
    if (listen(listener, 1024) < 0) die("listen");
    if (getsockname(listener, (struct sockaddr *)&address, &size) < 0) die("getsockname");
    printf("%d\n", ntohs(address.sin_port));
    fflush(stdout);

    epoll = epoll_create1(0);
    struct epoll_event event = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epoll, EPOLL_CTL_ADD, listener, &event);
    struct connection stdin_marker;
    event.data.ptr = &stdin_marker;
    epoll_ctl(epoll, EPOLL_CTL_ADD, STDIN_FILENO, &event);
    struct epoll_event ready[256];
    for (;;) {
        int count = epoll_wait(epoll, ready, 256, -1);
        if (count < 0 && errno == EINTR) continue;
        for (int i = 0; i < count; i++) {
            struct connection *c = ready[i].data.ptr;
            if (c == &stdin_marker) {
                char byte;
                if (read(STDIN_FILENO, &byte, 1) <= 0) return 0;
                continue;
            }
            if (c == NULL) {
                int fd;
                while ((fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct connection *fresh = calloc(1, sizeof *fresh);
                    fresh->fd = fd;
                    fresh->in_capacity = 65536;
                    fresh->in = malloc(fresh->in_capacity);
                    struct epoll_event watch = {.events = EPOLLIN, .data.ptr = fresh};
                    epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &watch);
                }
                continue;
            }
            int alive = 1;
            if (ready[i].events & EPOLLOUT) alive = flush(c);
            if (alive && (ready[i].events & EPOLLIN)) {
                /* One read per wake-up: the watch is level-triggered, so more data wakes the
                 * loop again, and a request is one read. */
                if (c->in_size == c->in_capacity) {
                    c->in_capacity *= 2;
                    c->in = realloc(c->in, c->in_capacity);
                }
                ssize_t got = recv(c->fd, c->in + c->in_size, c->in_capacity - c->in_size, 0);
                if (got > 0) {
                    c->in_size += (size_t)got;
                    alive = serve(c);
                } else if (got == 0 || errno != EAGAIN) {
                    alive = 0;
                }
            }
            if (!alive || (ready[i].events & (EPOLLHUP | EPOLLERR))) drop(c);
        }
    }
}
