/* Runs a program under a seccomp filter, as Android's app policy or Docker's default profile would.
 * Compiled by test/store/76-seccomp.test.ts with the system C compiler.
 *   seccomp-exec kill     PROGRAM ARGS...   io_uring_setup kills the process (SIGSYS), as on Android
 *   seccomp-exec eperm    PROGRAM ARGS...   io_uring_setup fails with EPERM, as under Docker
 *   seccomp-exec nodirect PROGRAM ARGS...   openat with O_DIRECT fails with EINVAL, as on FUSE (Termux
 *                                           shared storage); io_uring is left alone
 * The filter survives execve and holds for every thread the program starts. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH AUDIT_ARCH_AARCH64
#else
#error "seccomp-exec: add this architecture's AUDIT_ARCH"
#endif
#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425 /* the same number on every architecture */
#endif
#ifndef SECCOMP_RET_KILL_PROCESS
#define SECCOMP_RET_KILL_PROCESS 0x80000000U
#endif

/* The low 32 bits of syscall argument i (little-endian). */
#define ARG_LO(i) (offsetof(struct seccomp_data, args) + 8 * (i))

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: seccomp-exec kill|eperm|nodirect PROGRAM ARGS...\n");
    return 2;
  }
  const char* mode = argv[1];
  const int direct = strcmp(mode, "nodirect") == 0;
  unsigned uring_action;
  if (strcmp(mode, "kill") == 0)
    uring_action = SECCOMP_RET_KILL_PROCESS;
  else if (strcmp(mode, "eperm") == 0)
    uring_action = SECCOMP_RET_ERRNO | EPERM;
  else if (direct)
    uring_action = SECCOMP_RET_ALLOW;
  else {
    fprintf(stderr, "seccomp-exec: unknown mode '%s'\n", mode);
    return 2;
  }
  struct sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, uring_action),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(2)),
      BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, direct ? O_DIRECT : 0, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EINVAL),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {sizeof filter / sizeof filter[0], filter};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    perror("seccomp-exec: PR_SET_NO_NEW_PRIVS");
    return 2;
  }
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
    perror("seccomp-exec: PR_SET_SECCOMP");
    return 2;
  }
  execvp(argv[2], argv + 2);
  perror("seccomp-exec: execvp");
  return 2;
}
