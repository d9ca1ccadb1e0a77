// SPDX-License-Identifier: GPL-2.0-only
// The function being replaced throws a C++ exception for every third value;
// a negative value makes it sleep that many seconds first (a thread held
// inside it during a per-thread transition).
#include <stdexcept>
#include <string>
#include <unistd.h>
#include "check.h"

int check(int value)
{
	if (value < 0)
		sleep(-value);
	if (value % 3 == 0)
		throw std::runtime_error("old " + std::to_string(value % 2));
	return value;
}
