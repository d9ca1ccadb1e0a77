// SPDX-License-Identifier: GPL-2.0-only
// Thin C shims for system calls that Swift cannot call directly (variadic
// prototypes such as ptrace(2), or calls glibc does not wrap). Every function
// carries the `suture_` prefix and returns -1 with errno set on failure.
#ifndef CSUTURE_SHIMS_H
#define CSUTURE_SHIMS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/// One file descriptor mapping for a spawned child: `from` becomes `to`.
typedef struct {
    int from;
    int to;
} suture_fd_map;

/// Options for `suture_spawn`.
typedef struct {
    const char *path;          ///< executable; searched in PATH when it has no '/'
    char *const *argv;         ///< NULL-terminated
    char *const *envp;         ///< NULL-terminated, or NULL to inherit
    const char *cwd;           ///< or NULL
    const suture_fd_map *fds;  ///< descriptors the child gets; all others are closed
    int nfds;
    int death_signal;          ///< PR_SET_PDEATHSIG, 0 for none
    int new_process_group;     ///< setpgid(0, 0) in the child
    int new_session;           ///< setsid() in the child
} suture_spawn_options;

/// fork + exec with exact descriptor control and an optional parent-death
/// signal. Returns the child's pid, or -1 with errno set (including an exec
/// failure in the child, reported back through a close-on-exec pipe).
pid_t suture_spawn(const suture_spawn_options *options);

/// `suture_spawn` run on a thread that lives as long as the process, so
/// that the child's parent-death signal means "this process died" and not
/// "the calling thread ended" (prctl(2) ties PR_SET_PDEATHSIG to the
/// forking thread).
pid_t suture_spawn_from_keeper(const suture_spawn_options *options);

long suture_ptrace(int request, pid_t pid, void *addr, void *data);
int suture_finit_module(int fd, const char *params, int flags);
int suture_delete_module(const char *name, int flags);
int suture_memfd_create(const char *name, unsigned int flags);
/* pidfd_open(2); and pidfd_send_signal(2) with signal 0: 0 while the process lives. */
int suture_pidfd_open(pid_t pid);
int suture_pidfd_alive(int pidfd);
int suture_prctl_set_pdeathsig(int signal);
pid_t suture_gettid(void);
int suture_pipe2(int fds[2], int flags);
int suture_tgkill(pid_t tgid, pid_t tid, int sig);
int suture_prctl_set_timerslack(unsigned long nanoseconds);
/// process_vm_readv(2) with `count` ranges, each read into its own buffer.
long suture_process_vm_readv(pid_t pid, void *const *buffers, const uint64_t *addresses, const size_t *lengths, int count);

/// libFuzzer's driver, present only in `-sanitize=fuzzer` builds of the
/// ELFFuzz target (see Benchmarks/fuzz-elf.sh); declared here so Swift can call it.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

/// errno as a function, since Swift cannot read the errno macro everywhere.
int suture_errno(void);
void suture_set_errno(int value);

#endif
