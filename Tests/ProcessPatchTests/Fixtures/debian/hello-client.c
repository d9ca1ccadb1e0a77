/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * hello-client PORT NAME: sends "GET NAME" to hellod on 127.0.0.1:PORT and
 * prints its answer; exits 1 on any error or an answer that is not
 * "hello NAME ...".
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char request[256], answer[512], expected[300];
	struct sockaddr_in address = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	size_t got = 0;
	int fd;

	if (argc != 3)
		return 64;
	address.sin_port = htons((unsigned short)atoi(argv[1]));
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
		perror("connect");
		return 1;
	}
	snprintf(request, sizeof request, "GET %s\n", argv[2]);
	if (write(fd, request, strlen(request)) != (ssize_t)strlen(request))
		return 1;
	for (ssize_t n; got < sizeof answer - 1 && (n = read(fd, answer + got, sizeof answer - 1 - got)) > 0;)
		got += (size_t)n;
	answer[got] = 0;
	close(fd);
	snprintf(expected, sizeof expected, "hello %s ", argv[2]);
	fputs(answer, stdout);
	return strncmp(answer, expected, strlen(expected)) == 0 ? 0 : 1;
}
