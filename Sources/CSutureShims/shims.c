// SPDX-License-Identifier: GPL-2.0-only
#define _GNU_SOURCE
#include "CSutureShims.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int suture_errno(void) { return errno; }
void suture_set_errno(int value) { errno = value; }

long suture_ptrace(int request, pid_t pid, void *addr, void *data) {
    return ptrace((enum __ptrace_request)request, pid, addr, data);
}

int suture_finit_module(int fd, const char *params, int flags) {
    return (int)syscall(SYS_finit_module, fd, params, flags);
}

int suture_delete_module(const char *name, int flags) {
    return (int)syscall(SYS_delete_module, name, flags);
}

int suture_memfd_create(const char *name, unsigned int flags) {
    return (int)syscall(SYS_memfd_create, name, flags);
}

int suture_prctl_set_pdeathsig(int signal) {
    return prctl(PR_SET_PDEATHSIG, signal, 0, 0, 0);
}

int suture_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }

pid_t suture_gettid(void) { return (pid_t)syscall(SYS_gettid); }

int suture_tgkill(pid_t tgid, pid_t tid, int sig) {
    return (int)syscall(SYS_tgkill, tgid, tid, sig);
}

// The child side runs between fork and exec: only async-signal-safe calls.
static void close_range_compat(unsigned int first, unsigned int last) {
    if (syscall(SYS_close_range, first, last, 0) == 0) return;
    unsigned int stop = last > 65535 ? 65535 : last;
    for (unsigned int fd = first; fd <= stop; fd++) close((int)fd);
}

static void close_gap(unsigned int first, unsigned int last, int keep) {
    if (first > last) return;
    unsigned int k = (unsigned int)keep;
    if (k >= first && k <= last) {
        if (k > first) close_range_compat(first, k - 1);
        if (k < last) close_range_compat(k + 1, last);
    } else {
        close_range_compat(first, last);
    }
}

static void child_fail(int report_fd) {
    int err = errno;
    (void)!write(report_fd, &err, sizeof err);
    _exit(127);
}

pid_t suture_spawn(const suture_spawn_options *o) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) return -1;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int err = errno;
        close(report[0]);
        close(report[1]);
        errno = err;
        return -1;
    }
    if (pid == 0) {
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        for (int s = 1; s < 32; s++) {
            if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_DFL);
        }
        if (o->new_session && setsid() < 0) child_fail(report[1]);
        if (!o->new_session && o->new_process_group && setpgid(0, 0) != 0) child_fail(report[1]);
        if (o->death_signal) {
            if (prctl(PR_SET_PDEATHSIG, o->death_signal, 0, 0, 0) != 0) child_fail(report[1]);
            if (getppid() != parent) _exit(128 + o->death_signal);
        }
        // Move every source descriptor above the highest target first, so
        // that mappings such as {3->1, 1->3} cannot clobber each other.
        int high = 3;
        for (int i = 0; i < o->nfds; i++) {
            if (o->fds[i].to >= high) high = o->fds[i].to + 1;
        }
        if (report[1] >= high) high = report[1] + 1;
        int moved[256];
        int n = o->nfds < 256 ? o->nfds : 256;
        for (int i = 0; i < n; i++) {
            moved[i] = fcntl(o->fds[i].from, F_DUPFD_CLOEXEC, high + 1 + i);
            if (moved[i] < 0) child_fail(report[1]);
        }
        int keep_report = fcntl(report[1], F_DUPFD_CLOEXEC, high + 1 + n);
        if (keep_report < 0) child_fail(report[1]);
        for (int i = 0; i < n; i++) {
            if (dup2(moved[i], o->fds[i].to) < 0) child_fail(keep_report);
        }
        // Close everything that is not a target descriptor (nor the report
        // pipe, which closes itself on exec).
        int targets[256];
        for (int i = 0; i < n; i++) targets[i] = o->fds[i].to;
        for (int i = 1; i < n; i++) {
            int v = targets[i], j = i - 1;
            while (j >= 0 && targets[j] > v) { targets[j + 1] = targets[j]; j--; }
            targets[j + 1] = v;
        }
        unsigned int next = 0;
        for (int i = 0; i < n; i++) {
            if ((unsigned int)targets[i] > next) close_gap(next, (unsigned int)targets[i] - 1, keep_report);
            next = (unsigned int)targets[i] + 1;
        }
        close_gap(next, ~0U, keep_report);
        for (int i = 0; i < n; i++) {
            int flags = fcntl(o->fds[i].to, F_GETFD);
            if (flags >= 0) fcntl(o->fds[i].to, F_SETFD, flags & ~FD_CLOEXEC);
        }
        if (o->cwd && chdir(o->cwd) != 0) child_fail(keep_report);
        if (o->envp) {
            if (strchr(o->path, '/')) execve(o->path, o->argv, o->envp);
            else execvpe(o->path, o->argv, o->envp);
        } else {
            execvp(o->path, o->argv);
        }
        child_fail(keep_report);
    }
    close(report[1]);
    int child_errno = 0;
    ssize_t got;
    do {
        got = read(report[0], &child_errno, sizeof child_errno);
    } while (got < 0 && errno == EINTR);
    close(report[0]);
    if (got == (ssize_t)sizeof child_errno) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        errno = child_errno;
        return -1;
    }
    return pid;
}
