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
#include <sys/uio.h>
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

int suture_pidfd_open(pid_t pid) {
    return (int)syscall(434 /* SYS_pidfd_open */, pid, 0);
}

int suture_pidfd_alive(int pidfd) {
    return (int)syscall(424 /* SYS_pidfd_send_signal */, pidfd, 0, NULL, 0);
}

int suture_prctl_set_pdeathsig(int signal) {
    return prctl(PR_SET_PDEATHSIG, signal, 0, 0, 0);
}

int suture_prctl_set_timerslack(unsigned long nanoseconds) {
    return prctl(PR_SET_TIMERSLACK, nanoseconds, 0, 0, 0);
}

long suture_process_vm_readv(pid_t pid, void *const *buffers, const uint64_t *addresses, const size_t *lengths, int count) {
    struct iovec local[1024], remote[1024];
    if (count < 0 || count > 1024) {
        errno = EINVAL;
        return -1;
    }
    for (int i = 0; i < count; i++) {
        local[i].iov_base = buffers[i];
        local[i].iov_len = lengths[i];
        remote[i].iov_base = (void *)(uintptr_t)addresses[i];
        remote[i].iov_len = lengths[i];
    }
    return (long)process_vm_readv(pid, local, (unsigned long)count, remote, (unsigned long)count, 0);
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

// PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, not
// the process (prctl(2)). A child spawned from a short-lived thread (a Swift
// concurrency pool thread, a test runner's thread) would be killed early.
// So children with a death signal are forked from one keeper thread that
// lives as long as the process and blocks every signal.
#include <pthread.h>

static pthread_once_t keeper_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t keeper_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t keeper_wake = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t keeper_callers = PTHREAD_MUTEX_INITIALIZER;
static const suture_spawn_options *keeper_request;
static pid_t keeper_result;
static int keeper_errno;
static int keeper_done;
static int keeper_started;

static void *keeper_main(void *unused) {
    (void)unused;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    pthread_mutex_lock(&keeper_lock);
    for (;;) {
        while (keeper_request == NULL) pthread_cond_wait(&keeper_wake, &keeper_lock);
        pid_t pid = suture_spawn(keeper_request);
        keeper_errno = errno;
        keeper_result = pid;
        keeper_request = NULL;
        keeper_done = 1;
        pthread_cond_broadcast(&keeper_wake);
    }
    return NULL;
}

static void keeper_start(void) {
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    keeper_started = pthread_create(&thread, &attr, keeper_main, NULL) == 0;
    pthread_attr_destroy(&attr);
}

pid_t suture_spawn_from_keeper(const suture_spawn_options *options) {
    pthread_once(&keeper_once, keeper_start);
    if (!keeper_started) return suture_spawn(options);
    pthread_mutex_lock(&keeper_callers); // one request at a time
    pthread_mutex_lock(&keeper_lock);
    keeper_done = 0;
    keeper_request = options;
    pthread_cond_broadcast(&keeper_wake);
    while (!keeper_done) pthread_cond_wait(&keeper_wake, &keeper_lock);
    pid_t pid = keeper_result;
    int err = keeper_errno;
    pthread_mutex_unlock(&keeper_lock);
    pthread_mutex_unlock(&keeper_callers);
    errno = err;
    return pid;
}
