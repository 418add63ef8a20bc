/* The floor: the least work an HTTP/1.1 keep-alive server can do on Linux, for bench/page_bench.py
 * to measure the page server against. One thread, one epoll set (level-triggered), accept4()
 * non-blocking until EAGAIN, one read per readiness, every "\r\n\r\n" answered with the same
 * prebuilt bytes, the connection closed after the answer when the request said
 * "Connection: close" (that answer prebuilt too, with "Connection: close" added, as HTTP/1.1
 * asks and clients such as wrk need to reconnect rather than reuse). No parsing beyond that,
 * no limits, no timeouts: not a server to deploy.
 *
 *   floor_server PORT ANSWER_FILE [defer]   (ANSWER_FILE: the whole answer, status line to body;
 *                                            defer: TCP_DEFER_ACCEPT on the listener, to measure it)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static char *answer, *close_answer;
static size_t answer_len, close_answer_len;

static void die(const char *what) {
  perror(what);
  exit(1);
}

static int load(const char *path) {
  int fd = open(path, O_RDONLY);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) die(path);
  answer_len = (size_t)st.st_size;
  answer = malloc(answer_len);
  if (answer == NULL || read(fd, answer, answer_len) != (ssize_t)answer_len) die(path);
  close(fd);
  /* The same answer with "Connection: close" before the blank line. */
  char *end = memmem(answer, answer_len, "\r\n\r\n", 4);
  if (end == NULL) die("no blank line in the answer");
  const char extra[] = "\r\nConnection: close";
  size_t at = (size_t)(end - answer);
  close_answer_len = answer_len + sizeof extra - 1;
  close_answer = malloc(close_answer_len);
  if (close_answer == NULL) die("malloc");
  memcpy(close_answer, answer, at);
  memcpy(close_answer + at, extra, sizeof extra - 1);
  memcpy(close_answer + at + sizeof extra - 1, end, answer_len - at);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 3 && argc != 4) {
    fprintf(stderr, "usage: floor_server PORT ANSWER_FILE [defer]\n");
    return 2;
  }
  load(argv[2]);
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(lfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* inherited by accepted sockets */
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1])),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int defer_seconds = 1;
  if (argc == 4) setsockopt(lfd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer_seconds, sizeof defer_seconds);
  if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0) die("bind");
  if (listen(lfd, 4096) != 0) die("listen");
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  struct epoll_event events[256];
  char buf[16384];
  for (;;) {
    int n = epoll_wait(ep, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == lfd) {
        int c;
        while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        }
        continue;
      }
      ssize_t got = read(fd, buf, sizeof buf);
      if (got <= 0) {
        if (got < 0 && errno == EAGAIN) continue;
        close(fd);
        continue;
      }
      /* Every complete request in this read gets the answer (wrk does not pipeline; a request
         split across reads is not handled: wrk's requests are far below one read). */
      int answers = 0;
      for (char *p = buf; (p = memmem(p, (size_t)(buf + got - p), "\r\n\r\n", 4)) != NULL; p += 4) ++answers;
      int close_after = memmem(buf, (size_t)got, "Connection: close", 17) != NULL;
      for (; answers > 0; --answers) {
        const char *a = close_after && answers == 1 ? close_answer : answer;
        size_t len = close_after && answers == 1 ? close_answer_len : answer_len;
        if (write(fd, a, len) != (ssize_t)len) {
          close_after = 1;
          break;
        }
      }
      if (close_after) close(fd);
    }
  }
}
