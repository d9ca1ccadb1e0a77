/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Blocking calls that a stop breaks off with EINTR instead of restarting
 * them (signal(7)): a thread named "reader" waits in recv() on a socket with
 * SO_RCVTIMEO (60 s, as tinyproxy sets its idle timeout), another named
 * "poller" in epoll_wait() with a 60 s timeout. Each prints what its call
 * returned ("recv 5 hello", "epoll 1", or "recv failed: ..." /
 * "epoll failed: ...") and waits again. The main thread prints "tick N" every
 * 50 ms with N = value() (1 before the patch, 2 after) and, for each line
 * read from standard input, writes it to the reader's socket and to the
 * poller's pipe.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include "value.h"

static int sockets[2], pipefd[2];

static void *reader(void *arg)
{
	char buffer[256];
	struct timeval tv = { 60, 0 };

	(void)arg;
	pthread_setname_np(pthread_self(), "reader");
	setsockopt(sockets[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (;;) {
		ssize_t n = recv(sockets[0], buffer, sizeof(buffer) - 1, 0);

		if (n < 0) {
			printf("recv failed: %s\n", strerror(errno));
			continue;
		}
		buffer[n] = 0;
		printf("recv %zd %s", n, buffer);
	}
	return NULL;
}

static void *poller(void *arg)
{
	struct epoll_event event = { .events = EPOLLIN };
	int ep = epoll_create1(0);
	char buffer[256];

	(void)arg;
	pthread_setname_np(pthread_self(), "poller");
	epoll_ctl(ep, EPOLL_CTL_ADD, pipefd[0], &event);
	for (;;) {
		int n = epoll_wait(ep, &event, 1, 60000);

		if (n < 0) {
			printf("epoll failed: %s\n", strerror(errno));
			continue;
		}
		printf("epoll %d\n", n);
		if (n > 0 && read(pipefd[0], buffer, sizeof(buffer)) < 0)
			printf("read failed: %s\n", strerror(errno));
	}
	return NULL;
}

int main(void)
{
	pthread_t t;
	char line[200];

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sockets) != 0 || pipe(pipefd) != 0)
		return 1;
	pthread_create(&t, NULL, reader, NULL);
	pthread_create(&t, NULL, poller, NULL);
	fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
	printf("ready %d\n", getpid());
	for (;;) {
		printf("tick %d\n", value());
		while (fgets(line, sizeof(line), stdin)) {
			if (write(sockets[1], line, strlen(line)) < 0 || write(pipefd[1], "x", 1) < 0)
				printf("write failed: %s\n", strerror(errno));
		}
		clearerr(stdin);
		usleep(50000);
	}
}
