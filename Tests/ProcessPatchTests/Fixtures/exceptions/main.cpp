// SPDX-License-Identifier: GPL-2.0-only
// Two threads call check() in a loop and catch what it throws: every third
// value throws std::runtime_error("old N") before the patch and "new N" after
// (check.cpp). The main thread prints "caught MESSAGE" for every 30th value.
// A failed unwind would end the program (std::terminate). With the argument
// "hold", a third thread ("holder") calls check(-5) once: it sleeps 5 s inside
// check(), prints "hold done" and then waits outside it for ever.
#include <cstdio>
#include <cstring>
#include <pthread.h>
#include <stdexcept>
#include <thread>
#include <unistd.h>
#include "check.h"

static void loop(bool print)
{
	for (int i = 0;; i++) {
		try {
			check(i);
		} catch (const std::runtime_error &e) {
			if (print && i % 30 == 0)
				std::printf("caught %s\n", e.what());
		}
		usleep(1000);
	}
}

static void hold()
{
	pthread_setname_np(pthread_self(), "holder");
	check(-5);
	std::printf("hold done\n");
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	setvbuf(stdout, nullptr, _IOLBF, 0);
	std::thread other(loop, false);
	if (argc > 1 && std::strcmp(argv[1], "hold") == 0)
		std::thread(hold).detach();
	std::printf("ready\n");
	loop(true);
}
