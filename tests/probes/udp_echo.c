/*
 * A UDP echo for tests/network_test.ts (a busybox root filesystem has no UDP server), compiled
 * static by the test:
 *   udp_echo server PORT            answers each datagram with "echo:" and the datagram
 *   udp_echo client IP PORT TEXT    sends TEXT, prints the answer (5 tries, 1 s apart); exit 1
 *                                   when none came
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET};
  char buf[2048];
  if (fd < 0) return perror("socket"), 2;
  if (argc == 3 && strcmp(argv[1], "server") == 0) {
    addr.sin_port = htons(atoi(argv[2]));
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) return perror("bind"), 2;
    printf("ready\n");
    fflush(stdout);
    for (;;) {
      struct sockaddr_in from;
      socklen_t len = sizeof from;
      ssize_t n = recvfrom(fd, buf + 5, sizeof buf - 5, 0, (struct sockaddr *)&from, &len);
      if (n < 0) continue;
      memcpy(buf, "echo:", 5);
      sendto(fd, buf, n + 5, 0, (struct sockaddr *)&from, len);
    }
  }
  if (argc == 5 && strcmp(argv[1], "client") == 0) {
    addr.sin_port = htons(atoi(argv[3]));
    if (inet_pton(AF_INET, argv[2], &addr.sin_addr) != 1) return fprintf(stderr, "bad IP\n"), 2;
    struct timeval tv = {.tv_sec = 1};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (int i = 0; i < 5; i++) {
      sendto(fd, argv[4], strlen(argv[4]), 0, (struct sockaddr *)&addr, sizeof addr);
      ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
      if (n >= 0) {
        buf[n] = 0;
        printf("%s\n", buf);
        return 0;
      }
    }
    fprintf(stderr, "no answer\n");
    return 1;
  }
  fprintf(stderr, "usage: udp_echo server PORT | client IP PORT TEXT\n");
  return 2;
}
