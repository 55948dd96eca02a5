/*
 * Warren guest agent: after boot (boot.c) it serves the host. Each virtio-serial port named
 * `warren.N` (or each vsock connection, for Firecracker) is a session: the host opens it, says
 * HELLO, and runs commands over it. A command runs as the sandbox user in its own session and
 * cgroup, so a timeout or a kill ends everything it started; without `detach`, what it leaves
 * behind is ended when it exits. When the host side of a session goes away, the session's
 * commands are killed (detached ones live on). Protocol: agent.h.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"

#define MAX_SESSIONS 40
#define MAX_EXECS 128
#define VSOCK_PORT 1024
#define STRAGGLER_GRACE_MS 200

struct buf {
  char *p;
  size_t len, cap;
};

struct session {
  int fd;
  int is_port;   /* a virtio-serial port (reopened by the host) rather than a vsock connection */
  int connected; /* the host side is open */
  unsigned gen;  /* bumped on every reset: commands of an older generation no longer report */
  struct buf in;
};

struct exec {
  int used;
  uint32_t id;
  int session;
  unsigned gen;
  pid_t pid;
  int out, err, in; /* pipe ends, -1 once closed */
  struct buf stdin_data;
  size_t stdin_off;
  int stdin_eof, detach, timed_out, exited, status, ending;
  int64_t deadline, grace_end, end_by;
  char cgroup[80];
};

static struct session sessions[MAX_SESSIONS];
static int nsessions, vsock_fd = -1, sig_fd;
static struct exec execs[MAX_EXECS];
static int64_t boot_ms;

static void buf_add(struct buf *b, const void *p, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n) cap *= 2;
    char *q = realloc(b->p, cap);
    if (!q) return; /* dropped: the frame parser will resynchronise or the host times out */
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
}

static void buf_free(struct buf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

static void session_reset(int s);

/* Writes all of it, waiting at most 10 s for room; a session that cannot take it is reset. */
static void send_frame(int s, uint8_t type, uint32_t id, const void *data, uint32_t len) {
  struct session *se = &sessions[s];
  if (!se->connected) return;
  unsigned char h[FRAME_HEADER] = {0};
  uint32_t magic = FRAME_MAGIC;
  memcpy(h, &magic, 4);
  memcpy(h + 4, &len, 4);
  h[8] = type;
  memcpy(h + 12, &id, 4);
  const char *parts[2] = {(const char *)h, data};
  size_t sizes[2] = {FRAME_HEADER, len};
  for (int i = 0; i < 2; i++) {
    size_t off = 0;
    while (off < sizes[i]) {
      ssize_t w = write(se->fd, parts[i] + off, sizes[i] - off);
      if (w > 0) {
        off += w;
        continue;
      }
      if (w < 0 && errno == EINTR) continue;
      struct pollfd p = {se->fd, POLLOUT, 0};
      if (w < 0 && errno == EAGAIN && poll(&p, 1, 10000) == 1 && !(p.revents & (POLLHUP | POLLERR)))
        continue;
      session_reset(s);
      return;
    }
  }
}

static void send_text(int s, uint8_t type, uint32_t id, const char *text) {
  send_frame(s, type, id, text, strlen(text));
}

/* Kills the command and everything it started: its whole cgroup, or (detached, or without
 * cgroups) its process group while it lives. */
static void kill_exec(struct exec *e) {
  if (!e->detach && e->cgroup[0]) {
    char path[120];
    snprintf(path, sizeof path, "%s/cgroup.kill", e->cgroup);
    if (write_file(path, "1") == 0) return;
  }
  if (e->exited) return; /* its pid may be reused */
  kill(-e->pid, SIGKILL);
  kill(e->pid, SIGKILL);
}

/* Whether a cgroup still has processes. */
static int populated(const char *cgroup) {
  char path[120], text[256] = "";
  snprintf(path, sizeof path, "%s/cgroup.events", cgroup);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  text[n > 0 ? n : 0] = 0;
  return strstr(text, "populated 1") != NULL;
}

/* A new host connection: commands of the previous one are ended and no longer report. */
static void session_restart(int s) {
  sessions[s].gen++;
  for (int i = 0; i < MAX_EXECS; i++)
    if (execs[i].used && execs[i].session == s && !execs[i].detach) kill_exec(&execs[i]);
}

/* The host side went away: forget what it sent and end its commands. */
static void session_reset(int s) {
  struct session *se = &sessions[s];
  session_restart(s);
  se->in.len = 0;
  if (se->is_port) {
    se->connected = 0;
  } else if (se->fd >= 0) {
    close(se->fd);
    se->fd = -1;
    se->connected = 0;
  }
}

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

/* Sends what a pipe holds: 1 when something was read, -1 when it would block, 0 at the end. */
static int pump(struct exec *e, int *fd, uint8_t type) {
  char chunk[32768];
  ssize_t n = read(*fd, chunk, sizeof chunk);
  if (n > 0) {
    if (sessions[e->session].gen == e->gen) send_frame(e->session, type, e->id, chunk, n);
    return 1;
  }
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return -1;
  close_fd(fd);
  return 0;
}

static void finish_exec(struct exec *e) {
  while (e->out >= 0 && pump(e, &e->out, R_STDOUT) == 1) {
  }
  while (e->err >= 0 && pump(e, &e->err, R_STDERR) == 1) {
  }
  close_fd(&e->out);
  close_fd(&e->err);
  close_fd(&e->in);
  int32_t result[2];
  result[0] = e->timed_out                 ? 124
              : WIFEXITED(e->status)       ? WEXITSTATUS(e->status)
              : WIFSIGNALED(e->status)     ? 128 + WTERMSIG(e->status)
                                           : 255;
  result[1] = e->timed_out;
  if (sessions[e->session].gen == e->gen) send_frame(e->session, R_EXIT, e->id, result, sizeof result);
  if (e->cgroup[0] && !e->detach) rmdir(e->cgroup); /* EBUSY until its processes are gone: see reap */
  buf_free(&e->stdin_data);
  e->used = 0;
}

static void child_exec(struct exec *e, int in, int out, int err, const char *cwd, char **argv,
                       char **envp) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  signal(SIGPIPE, SIG_DFL); /* ignored signals would stay ignored across exec */
  setsid();
  if (e->cgroup[0]) {
    char path[120];
    snprintf(path, sizeof path, "%s/cgroup.procs", e->cgroup);
    write_file(path, "0");
  }
  write_file("/proc/self/oom_score_adj", "0");
  dup2(in, 0);
  dup2(out, 1);
  dup2(err, 2);
  close_range(3, ~0U, 0);
  umask(022);
  if (setgroups(0, NULL) != 0 || setgid(SANDBOX_UID) != 0 || setuid(SANDBOX_UID) != 0) {
    dprintf(2, "warren-agent: cannot drop privileges: %s\n", strerror(errno));
    _exit(125);
  }
  if (chdir(cwd) != 0) {
    dprintf(2, "warren-agent: cannot change directory to %s: %s\n", cwd, strerror(errno));
    _exit(125);
  }
  environ = envp;
  execvp(argv[0], argv);
  int code = errno == ENOENT ? 127 : 126;
  dprintf(2, "warren-agent: %s: %s\n", argv[0], strerror(errno));
  _exit(code);
}

static void start_exec(int s, uint32_t id, const char *p, uint32_t len) {
  uint32_t hdr[4];
  if (len < sizeof hdr) return send_text(s, R_ERROR, id, "malformed exec request");
  memcpy(hdr, p, sizeof hdr);
  uint32_t argc = hdr[2], envc = hdr[3];
  if (argc == 0 || argc > 65536 || envc > 65536) return send_text(s, R_ERROR, id, "bad argv or env");
  char **strs = calloc(argc + envc + 3, sizeof *strs);
  const char *q = p + sizeof hdr, *end = p + len;
  for (uint32_t i = 0; i < 1 + argc + envc; i++) {
    const char *z = memchr(q, 0, end - q);
    if (!z) {
      free(strs);
      return send_text(s, R_ERROR, id, "truncated exec request");
    }
    strs[i + (i > argc ? 1 : 0)] = (char *)q;
    q = z + 1;
  }
  /* strs: cwd, argv[0..argc-1], NULL, env[0..envc-1], NULL */
  struct exec *e = NULL;
  for (int i = 0; i < MAX_EXECS && !e; i++)
    if (!execs[i].used) e = &execs[i];
  if (!e) {
    free(strs);
    return send_text(s, R_ERROR, id, "too many commands at once");
  }
  memset(e, 0, sizeof *e);
  e->id = id;
  e->session = s;
  e->gen = sessions[s].gen;
  e->detach = hdr[0] & EXEC_DETACH;
  e->deadline = hdr[1] ? now_ms() + hdr[1] : 0;
  if (have_cgroups) {
    static unsigned seq;
    if (e->detach) {
      snprintf(e->cgroup, sizeof e->cgroup, "%s/bg", CGROUP_ROOT);
    } else {
      snprintf(e->cgroup, sizeof e->cgroup, "%s/x%u", CGROUP_ROOT, ++seq);
    }
    if (mkdir(e->cgroup, 0755) != 0 && errno != EEXIST) e->cgroup[0] = 0;
  }
  int pin[2], pout[2], perr[2];
  if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC) || pipe2(perr, O_CLOEXEC)) {
    free(strs);
    return send_text(s, R_ERROR, id, "no pipes");
  }
  pid_t pid = fork();
  if (pid == 0) child_exec(e, pin[0], pout[1], perr[1], strs[0], strs + 1, strs + argc + 2);
  close(pin[0]);
  close(pout[1]);
  close(perr[1]);
  free(strs);
  if (pid < 0) {
    close(pin[1]);
    close(pout[0]);
    close(perr[0]);
    return send_text(s, R_ERROR, id, "fork failed");
  }
  e->used = 1;
  e->pid = pid;
  e->in = pin[1];
  e->out = pout[0];
  e->err = perr[0];
  fcntl(e->in, F_SETFL, O_NONBLOCK);
  fcntl(e->out, F_SETFL, O_NONBLOCK);
  fcntl(e->err, F_SETFL, O_NONBLOCK);
}

static struct exec *find_exec(int s, uint32_t id) {
  for (int i = 0; i < MAX_EXECS; i++)
    if (execs[i].used && execs[i].session == s && execs[i].gen == sessions[s].gen && execs[i].id == id)
      return &execs[i];
  return NULL;
}

static long rss_kib(void) {
  char line[128];
  long kib = -1;
  FILE *f = fopen("/proc/self/status", "re");
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld", &kib) == 1) break;
  if (f) fclose(f);
  return kib;
}

static void handle_frame(int s, uint8_t type, uint32_t id, const char *p, uint32_t len) {
  struct exec *e;
  char text[256];
  switch (type) {
  case T_HELLO: {
    session_restart(s);
    /* The guest clock starts from the emulated RTC; take the host's time when it is off. */
    long long host_ms = len && len < 32 ? atoll(p) : 0;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    long long guest_ms = (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
    if (host_ms > 0 && llabs(host_ms - guest_ms) > 1000) {
      tv.tv_sec = host_ms / 1000;
      tv.tv_usec = (host_ms % 1000) * 1000;
      settimeofday(&tv, NULL);
    }
    return send_text(s, R_HELLO, id, "warren-agent " AGENT_VERSION);
  }
  case T_EXEC:
    return start_exec(s, id, p, len);
  case T_STDIN:
    if ((e = find_exec(s, id)) == NULL) return;
    if (len == 0) e->stdin_eof = 1;
    else buf_add(&e->stdin_data, p, len);
    return;
  case T_KILL:
    if ((e = find_exec(s, id)) != NULL) kill_exec(e);
    return;
  case T_PING: {
    int n = 0;
    for (int i = 0; i < MAX_EXECS; i++) n += execs[i].used;
    snprintf(text, sizeof text, "version=%s rss_kib=%ld uptime_ms=%lld commands=%d cgroups=%d",
             AGENT_VERSION, rss_kib(), (long long)(now_ms() - boot_ms), n, have_cgroups);
    return send_text(s, R_PONG, id, text);
  }
  case T_SHUTDOWN:
    send_text(s, R_SHUTDOWN, id, "");
    shutdown_guest();
  default:
    snprintf(text, sizeof text, "unknown request type %u", type);
    return send_text(s, R_ERROR, id, text);
  }
}

static void read_session(int s) {
  struct session *se = &sessions[s];
  char chunk[65536];
  ssize_t n = read(se->fd, chunk, sizeof chunk);
  if (n <= 0) {
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    return session_reset(s); /* end of file: the host closed its side */
  }
  buf_add(&se->in, chunk, n);
  while (se->in.len >= FRAME_HEADER) {
    uint32_t magic, len, id;
    memcpy(&magic, se->in.p, 4);
    memcpy(&len, se->in.p + 4, 4);
    memcpy(&id, se->in.p + 12, 4);
    if (magic != FRAME_MAGIC || len > FRAME_MAX) {
      logmsg("session %d: bad frame, resetting", s);
      return session_reset(s);
    }
    if (se->in.len < FRAME_HEADER + len) break;
    handle_frame(s, (uint8_t)se->in.p[8], id, se->in.p + FRAME_HEADER, len);
    if (se->in.len < FRAME_HEADER + len) break; /* the session was reset while handling */
    memmove(se->in.p, se->in.p + FRAME_HEADER + len, se->in.len - FRAME_HEADER - len);
    se->in.len -= FRAME_HEADER + len;
  }
}

/* Opens the virtio-serial ports `warren.0` .. `warren.<N-1>` (N = warren.ports=), which appear
 * one by one as the kernel probes them; port K becomes session K. */
static void open_ports(void) {
  const char *want = cmdline_param("ports");
  int expected = want ? atoi(want) : 1;
  if (expected < 1 || expected > MAX_SESSIONS / 2) expected = MAX_SESSIONS / 2;
  int opened = 0;
  for (int64_t end = now_ms() + 10000; opened < expected && now_ms() < end; usleep(2000)) {
    DIR *d = opendir("/sys/class/virtio-ports");
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
      char path[300], name[64] = "";
      snprintf(path, sizeof path, "/sys/class/virtio-ports/%s/name", de->d_name);
      FILE *f = fopen(path, "re");
      if (!f) continue;
      if (!fgets(name, sizeof name, f)) name[0] = 0;
      fclose(f);
      int k = strncmp(name, "warren.", 7) == 0 ? atoi(name + 7) : -1;
      if (k < 0 || k >= expected || sessions[k].fd >= 0) continue;
      snprintf(path, sizeof path, "/dev/%s", de->d_name);
      int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
      if (fd < 0) continue;
      fcntl(fd, F_SETOWN, getpid());
      fcntl(fd, F_SETFL, O_RDWR | O_NONBLOCK | O_ASYNC);
      sessions[k].fd = fd;
      sessions[k].is_port = 1;
      opened++;
    }
    if (d) closedir(d);
  }
  nsessions = expected;
  if (opened < expected) logmsg("only %d of %d ports appeared", opened, expected);
}

static void open_vsock(void) {
  struct sockaddr_vm addr = {.svm_family = AF_VSOCK, .svm_port = VSOCK_PORT, .svm_cid = VMADDR_CID_ANY};
  vsock_fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (vsock_fd < 0 || bind(vsock_fd, (struct sockaddr *)&addr, sizeof addr) || listen(vsock_fd, 16)) {
    logmsg("vsock: %s", strerror(errno));
    vsock_fd = -1;
  }
}

/* A port's host side cannot be waited for with poll (it reports HUP until then): check. */
static void check_ports(void) {
  for (int s = 0; s < nsessions; s++) {
    if (!sessions[s].is_port || sessions[s].connected) continue;
    struct pollfd p = {sessions[s].fd, POLLIN | POLLOUT, 0};
    if (poll(&p, 1, 0) == 1 && !(p.revents & POLLHUP)) sessions[s].connected = 1;
  }
}

static void reap(void) {
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    for (int i = 0; i < MAX_EXECS; i++) {
      if (execs[i].used && execs[i].pid == pid && !execs[i].exited) {
        execs[i].exited = 1;
        execs[i].status = status;
        execs[i].grace_end = now_ms() + STRAGGLER_GRACE_MS;
      }
    }
  }
  /* Remove the cgroups of finished commands once their last process is gone. */
  DIR *d = opendir(CGROUP_ROOT);
  struct dirent *de;
  while (have_cgroups && d && (de = readdir(d)) != NULL) {
    if (de->d_name[0] != 'x') continue;
    char path[300];
    snprintf(path, sizeof path, "%s/%s", CGROUP_ROOT, de->d_name);
    int busy = 0;
    for (int i = 0; i < MAX_EXECS; i++) busy |= execs[i].used && strcmp(execs[i].cgroup, path) == 0;
    if (!busy) rmdir(path);
  }
  if (d) closedir(d);
}

static void serve(void) {
  struct pollfd fds[2 + MAX_SESSIONS + 3 * MAX_EXECS];
  for (;;) {
    int n = 0, wait = -1;
    int64_t now = now_ms();
    fds[n++] = (struct pollfd){sig_fd, POLLIN, 0};
    if (vsock_fd >= 0) fds[n++] = (struct pollfd){vsock_fd, POLLIN, 0};
    int any_closed = 0;
    for (int s = 0; s < MAX_SESSIONS; s++) {
      if (sessions[s].fd < 0) continue;
      if (sessions[s].connected) fds[n++] = (struct pollfd){sessions[s].fd, POLLIN, 0};
      else any_closed |= sessions[s].is_port;
    }
    if (any_closed) wait = 1000; /* in case a SIGIO about a host connecting was missed */
    for (int i = 0; i < MAX_EXECS; i++) {
      struct exec *e = &execs[i];
      if (!e->used) continue;
      if (e->exited && ((e->out < 0 && e->err < 0) || now >= e->grace_end)) {
        /* What the command left behind ends with it; report once it is gone (at most 2 s). */
        if (!e->detach && !e->ending) {
          kill_exec(e);
          e->ending = 1;
          e->end_by = now + 2000;
        }
        if (e->ending && e->cgroup[0] && now < e->end_by && populated(e->cgroup)) {
          wait = wait < 0 || wait > 2 ? 2 : wait;
        } else {
          finish_exec(e);
          continue;
        }
      }
      if (e->deadline && !e->timed_out && now >= e->deadline) {
        e->timed_out = 1;
        kill_exec(e);
      }
      int64_t next = e->exited ? e->grace_end : e->deadline && !e->timed_out ? e->deadline : 0;
      if (next && (wait < 0 || next - now < wait)) wait = next - now < 1 ? 1 : (int)(next - now);
      if (e->out >= 0) fds[n++] = (struct pollfd){e->out, POLLIN, 0};
      if (e->err >= 0) fds[n++] = (struct pollfd){e->err, POLLIN, 0};
      if (e->in >= 0 && (e->stdin_off < e->stdin_data.len || e->stdin_eof))
        fds[n++] = (struct pollfd){e->in, POLLOUT, 0};
    }
    if (poll(fds, n, wait) < 0 && errno != EINTR) logmsg("poll: %s", strerror(errno));
    for (int k = 0; k < n; k++) {
      if (!fds[k].revents) continue;
      int fd = fds[k].fd;
      if (fd == sig_fd) {
        struct signalfd_siginfo si;
        while (read(sig_fd, &si, sizeof si) == sizeof si) {
          if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) shutdown_guest();
        }
        reap();
        check_ports();
        continue;
      }
      if (fd == vsock_fd) {
        int c = accept4(vsock_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        int s = nsessions; /* vsock connections take the slots after the ports */
        while (s < MAX_SESSIONS && sessions[s].fd >= 0) s++;
        if (c >= 0 && s < MAX_SESSIONS) {
          sessions[s].fd = c;
          sessions[s].connected = 1;
          sessions[s].in.len = 0;
        } else if (c >= 0) {
          close(c);
        }
        continue;
      }
      for (int s = 0; s < MAX_SESSIONS; s++)
        if (sessions[s].fd == fd && sessions[s].connected) read_session(s);
      for (int i = 0; i < MAX_EXECS; i++) {
        struct exec *e = &execs[i];
        if (!e->used) continue;
        if (fd == e->out) pump(e, &e->out, R_STDOUT);
        else if (fd == e->err) pump(e, &e->err, R_STDERR);
        else if (fd == e->in) {
          if (e->stdin_off < e->stdin_data.len) {
            ssize_t w = write(e->in, e->stdin_data.p + e->stdin_off, e->stdin_data.len - e->stdin_off);
            if (w > 0) e->stdin_off += w;
            else if (w < 0 && errno != EAGAIN && errno != EINTR) close_fd(&e->in);
          } else if (e->stdin_eof) {
            close_fd(&e->in);
          }
        }
      }
    }
  }
}

int main(void) {
  boot_ms = now_ms();
  if (getpid() != 1) {
    logmsg("must run as PID 1 of a Warren microVM");
    return 1;
  }
  boot();
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGIO);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigprocmask(SIG_BLOCK, &set, NULL);
  sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  signal(SIGPIPE, SIG_IGN);
  for (int s = 0; s < MAX_SESSIONS; s++) sessions[s].fd = -1;
  const char *chan = cmdline_param("chan");
  if (chan && strcmp(chan, "vsock") == 0) open_vsock();
  else open_ports();
  check_ports();
  logmsg("ready in %lld ms (%d ports%s)", (long long)(now_ms() - boot_ms), nsessions,
         vsock_fd >= 0 ? ", vsock" : "");
  serve();
}
