/* The sandbox's launcher, in two modes:

     safexam-launcher UID|-1 [cg:CGROUP.PROCS ...] RESOURCE:SOFT:HARD ... -- PROGRAM ARGS...
       In front of bwrap: join the sandbox's control groups (writing our pid
       to each cgroup.procs named), set the limits while still privileged,
       drop to UID with no supplementary groups (-1: keep ours), exec
       PROGRAM. One exec doing what prlimit and setpriv do in two.

     safexam-launcher reap STATS_FD GO_FD|-1 -- PROGRAM ARGS...
       PID 1 of the sandbox: wait for the go byte on GO_FD (-1: start at
       once), run PROGRAM, reap everything, report its peak RSS on STATS_FD
       once it is dead, exit with its status (128 + N for a signal). End of
       file on GO_FD means the run was called off: exit 125, running nothing.

   Built once per worker process with the C library (statically where it
   can be, which starts faster). */
#define _GNU_SOURCE
#define _FILE_OFFSET_BITS 64
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int fail(const char *what, int err) {
  if (err)
    dprintf(2, "safexam-launcher: %s: errno %d\n", what, err);
  else
    dprintf(2, "safexam-launcher: %s\n", what);
  return 127;
}

/* A decimal number ending at a NUL or at `stop`; -1 when it is not one.
   Stricter than strtoull: no sign, no blanks, no overflow. */
static int number(const char **text, char stop, unsigned long long *out) {
  const char *p = *text;
  unsigned long long v = 0;
  if (*p < '0' || *p > '9') return -1;
  for (; *p >= '0' && *p <= '9'; p++) {
    if (v > (~0ULL - 9) / 10) return -1;
    v = v * 10 + (unsigned long long)(*p - '0');
  }
  if (*p != stop) return -1;
  *text = p + (stop ? 1 : 0);
  *out = v;
  return 0;
}

/* execvp's search without its fallback of running a file with no #! line
   through /bin/sh: a name without a slash is looked up on PATH (the
   sandbox sets it), else on the system directories. Returns the errno. */
static int run_program(char **argv) {
  const char *path = getenv("PATH"), *name = argv[0];
  size_t k = strlen(name);
  char full[4096];
  int err = ENOENT;
  if (strchr(name, '/') != NULL) {
    execve(name, argv, environ);
    return errno;
  }
  if (path == NULL) path = "/usr/local/bin:/usr/bin:/bin";
  while (*path) {
    size_t n = strcspn(path, ":");
    if (n && n + 1 + k < sizeof full) {
      memcpy(full, path, n);
      full[n] = '/';
      memcpy(full + n + 1, name, k + 1);
      execve(full, argv, environ);
      if (errno != ENOENT) err = errno;
    }
    path += n + (path[n] == ':');
  }
  return err;
}

static int reap(int argc, char **argv) {
  unsigned long long stats, go_fd;
  const char *p;
  char go;
  int status = 0;
  ssize_t got;
  pid_t child;
  struct rusage usage;
  if (argc < 6 || strcmp(argv[4], "--") != 0) return fail("usage", 0);
  p = argv[2];
  if (number(&p, 0, &stats)) return fail("bad fd", 0);
  if (strcmp(argv[3], "-1") != 0) {
    p = argv[3];
    if (number(&p, 0, &go_fd)) return fail("bad fd", 0);
    do got = read((int)go_fd, &go, 1); while (got < 0 && errno == EINTR);
    if (got != 1) return 125;
    close((int)go_fd);
  }
  child = fork();
  if (child < 0) return fail("fork", errno);
  if (child == 0) {
    int err = run_program(argv + 5);
    dprintf(2, "cannot run %s: %s\n", argv[5],
            err == ENOENT ? "no such file or directory" : "not executable");
    _exit(err == ENOENT ? 127 : 126);
  }
  for (;;) {
    pid_t pid = wait4(-1, &status, 0, &usage);
    if (pid == child) break;
    if (pid < 0 && errno != EINTR) return fail("wait4", errno);
  }
  dprintf((int)stats, "\nsafexam-rusage %ld\n", usage.ru_maxrss);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

/* Everything this process starts from now on is counted in that group. */
static int join_cgroup(const char *procs) {
  char pid[32];
  int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
  int fd = open(procs, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  if (write(fd, pid, (size_t)n) != n) {
    int err = errno;
    close(fd);
    return err ? err : EIO;
  }
  close(fd);
  return 0;
}

static int launch(int argc, char **argv) {
  int i;
  for (i = 2; i < argc && strcmp(argv[i], "--") != 0; i++) {
    const char *p = argv[i];
    if (strncmp(p, "cg:", 3) == 0) {
      int err = join_cgroup(p + 3);
      if (err) return fail("joining the sandbox's cgroup", err);
      continue;
    }
    unsigned long long which, soft, hard;
    struct rlimit limit;
    if (number(&p, ':', &which) || number(&p, ':', &soft) || number(&p, 0, &hard))
      return fail("bad limit", 0);
    limit.rlim_cur = (rlim_t)soft;
    limit.rlim_max = (rlim_t)hard;
    if (prlimit(0, (int)which, &limit, NULL)) return fail("setrlimit", errno);
  }
  if (i + 1 >= argc) return fail("no program", 0);
  if (strcmp(argv[1], "-1") != 0) {
    const char *p = argv[1];
    unsigned long long uid;
    if (number(&p, 0, &uid) || uid > 0xfffffffeULL) return fail("bad uid", 0);
    if (setgroups(0, NULL)) return fail("setgroups", errno);
    if (setresgid((gid_t)uid, (gid_t)uid, (gid_t)uid)) return fail("setresgid", errno);
    if (setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid)) return fail("setresuid", errno);
    if (getuid() != (uid_t)uid || geteuid() != (uid_t)uid) return fail("uid drop", 0);
  }
  execve(argv[i + 1], argv + i + 1, environ);
  return fail("execve", errno);
}

int main(int argc, char **argv) {
  if (argc < 4) return fail("usage", 0);
  if (strcmp(argv[1], "reap") == 0) return reap(argc, argv);
  return launch(argc, argv);
}
