/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * server [PORT]: a small TCP server on 127.0.0.1 (PORT, or an ephemeral port;
 * printed as "port N").
 * The main thread accepts connections and hands them to four workers; a
 * worker reads one line, answers with respond() and closes. Every system
 * call interrupted with EINTR is retried.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "respond.h"

#define WORKERS 4
#define QUEUE 256

static int queue[QUEUE];
static int head, tail;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready = PTHREAD_COND_INITIALIZER;

static void push(int fd)
{
	pthread_mutex_lock(&lock);
	queue[tail++ % QUEUE] = fd;
	pthread_cond_signal(&ready);
	pthread_mutex_unlock(&lock);
}

static int pop(void)
{
	pthread_mutex_lock(&lock);
	while (head == tail)
		pthread_cond_wait(&ready, &lock);
	int fd = queue[head++ % QUEUE];
	pthread_mutex_unlock(&lock);
	return fd;
}

static void serve(int fd)
{
	char request[256], response[512];
	size_t got = 0;

	while (got < sizeof request - 1) {
		ssize_t n = read(fd, request + got, sizeof request - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (memchr(request, '\n', got))
			break;
	}
	request[got] = 0;
	char *newline = strchr(request, '\n');
	if (newline)
		*newline = 0;
	int length = respond(response, sizeof response, request);
	for (int sent = 0; sent < length;) {
		ssize_t n = write(fd, response + sent, (size_t)(length - sent));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		sent += (int)n;
	}
	close(fd);
}

static void *worker(void *arg)
{
	(void)arg;
	pthread_setname_np(pthread_self(), "worker");
	for (;;)
		serve(pop());
	return NULL;
}

int main(int argc, char **argv)
{
	struct sockaddr_in address = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t length = sizeof address;
	int listener = socket(AF_INET, SOCK_STREAM, 0);
	pthread_t t;

	setvbuf(stdout, NULL, _IOLBF, 0);
	setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &(int){ 1 }, sizeof(int));
	if (argc > 1)
		address.sin_port = htons((unsigned short)atoi(argv[1]));
	if (listener < 0 || bind(listener, (struct sockaddr *)&address, sizeof address) != 0
	    || listen(listener, 128) != 0 || getsockname(listener, (struct sockaddr *)&address, &length) != 0) {
		perror("listen");
		return 1;
	}
	for (int i = 0; i < WORKERS; i++)
		pthread_create(&t, NULL, worker, NULL);
	printf("port %d\n", ntohs(address.sin_port));
	for (;;) {
		int fd = accept(listener, NULL, NULL);
		if (fd < 0) {
			if (errno != EINTR)
				printf("accept failed: %s\n", strerror(errno));
			continue;
		}
		push(fd);
	}
}
