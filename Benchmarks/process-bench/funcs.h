/* SPDX-License-Identifier: GPL-2.0-only */
int f0(int x); int f1(int x); int f2(int x); int f3(int x); int f4(int x);
int f5(int x); int f6(int x); int f7(int x); int f8(int x);
int probe(int x);
int plain(int x);
