// SPDX-License-Identifier: GPL-2.0-only
// Two threads call check() in a loop and catch what it throws: every third
// value throws std::runtime_error("old N") before the patch and "new N" after
// (check.cpp). The main thread prints "caught MESSAGE" for each exception and
// "count K" once per 100 calls: K counts the values returned normally. A
// failed unwind would end the program (std::terminate).
#include <cstdio>
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

int main()
{
	setvbuf(stdout, nullptr, _IOLBF, 0);
	std::thread other(loop, false);
	std::printf("ready\n");
	loop(true);
}
