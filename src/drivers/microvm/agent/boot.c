/*
 * Boot of a Warren microVM, done by the agent as PID 1 of the initramfs: load the kernel modules
 * listed in /modules.order, mount the root disk (/dev/vda, ext4), the workspace (virtiofs tag
 * `ws`, or the ext4 disk /dev/vdb), /tmp and /run, chroot into the root disk, set up the cgroup
 * for commands, the hostname and the loopback interface. Also the clean shutdown.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

int have_cgroups = 0;
static char cmdline[4096];

void logmsg(const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n > (int)sizeof line - 2) n = sizeof line - 2;
  line[n++] = '\n';
  ssize_t w = write(2, "warren-agent: ", 14);
  w = write(2, line, n);
  (void)w;
}

int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return -1;
  size_t len = strlen(text);
  ssize_t w = write(fd, text, len);
  int saved = errno;
  close(fd);
  errno = saved;
  return w == (ssize_t)len ? 0 : -1;
}

const char *cmdline_param(const char *key) {
  static char value[256];
  char needle[64];
  snprintf(needle, sizeof needle, "warren.%s=", key);
  for (char *p = cmdline; (p = strstr(p, needle)) != NULL; p++) {
    if (p != cmdline && p[-1] != ' ') continue;
    p += strlen(needle);
    size_t n = strcspn(p, " \n");
    if (n >= sizeof value) n = sizeof value - 1;
    memcpy(value, p, n);
    value[n] = 0;
    return value;
  }
  return NULL;
}

static void die(const char *what) {
  logmsg("boot failed: %s: %s", what, strerror(errno));
  sync();
  reboot(RB_POWER_OFF);
  _exit(1);
}

static void mount_or_die(const char *src, const char *dst, const char *type, unsigned long flags,
                         const char *data) {
  mkdir(dst, 0755);
  if (mount(src, dst, type, flags, data) != 0) die(dst);
}

/* Loads each module named in /modules.order (already in dependency order). */
static void load_modules(void) {
  FILE *f = fopen("/modules.order", "re");
  if (!f) return;
  char name[256];
  while (fgets(name, sizeof name, f)) {
    name[strcspn(name, "\n")] = 0;
    if (!name[0]) continue;
    char path[300];
    snprintf(path, sizeof path, "/modules/%s", name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    if (syscall(SYS_finit_module, fd, "", 0) != 0 && errno != EEXIST)
      logmsg("module %s: %s", name, strerror(errno));
    close(fd);
    unlink(path); /* the initramfs lives in RAM: give the memory back */
  }
  fclose(f);
}

static int wait_for(const char *path, int ms) {
  for (int64_t end = now_ms() + ms; access(path, F_OK) != 0; usleep(2000))
    if (now_ms() > end) return -1;
  return 0;
}

static void setup_cgroups(void) {
  const char *pids = cmdline_param("pids");
  if (mount("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0 ||
      write_file("/sys/fs/cgroup/cgroup.subtree_control", "+pids +memory") != 0 ||
      (mkdir(CGROUP_ROOT, 0755) != 0 && errno != EEXIST) ||
      write_file(CGROUP_ROOT "/cgroup.subtree_control", "+pids +memory") != 0) {
    logmsg("cgroups unavailable (%s): commands are tracked by process group", strerror(errno));
    return;
  }
  if (pids && write_file(CGROUP_ROOT "/pids.max", pids) != 0) logmsg("pids.max: %s", strerror(errno));
  /* Commands get the VM's memory less a reserve for the kernel and the agent, so a command that
   * takes too much meets a quick cgroup OOM kill rather than a whole-VM reclaim storm. */
  long total_kib = 0;
  char line[128];
  FILE *f = fopen("/proc/meminfo", "re");
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "MemTotal: %ld", &total_kib) == 1) break;
  if (f) fclose(f);
  if (total_kib > 0) {
    long reserve_kib = 16384 + total_kib / 16;
    snprintf(line, sizeof line, "%ld", (total_kib - reserve_kib) * 1024);
    if (write_file(CGROUP_ROOT "/memory.max", line) != 0) logmsg("memory.max: %s", strerror(errno));
  }
  have_cgroups = 1;
}

static void setup_identity(void) {
  const char *name = cmdline_param("hostname");
  if (!name) name = "warren";
  if (sethostname(name, strlen(name)) != 0) logmsg("sethostname: %s", strerror(errno));
  char text[512];
  snprintf(text, sizeof text, "%s\n", name);
  write_file("/etc/hostname", text);
  snprintf(text, sizeof text, "127.0.0.1\tlocalhost %s\n::1\tlocalhost ip6-localhost ip6-loopback\n", name);
  write_file("/etc/hosts", text);
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "lo");
  if (s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) logmsg("lo: %s", strerror(errno));
  }
  if (s >= 0) close(s);
}

void boot(void) {
  umask(022);
  mount_or_die("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mount_or_die("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mount_or_die("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
  int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t n = read(fd, cmdline, sizeof cmdline - 1);
    cmdline[n > 0 ? n : 0] = 0;
    close(fd);
  }
  if (cmdline_param("probe")) {
    /* An acceleration probe only needs to know that the kernel reached user space. */
    logmsg("probe ok");
    reboot(RB_POWER_OFF);
    reboot(RB_AUTOBOOT);
    _exit(0);
  }
  load_modules();
  if (wait_for("/dev/vda", 10000) != 0) die("/dev/vda did not appear");
  mount_or_die("/dev/vda", "/newroot", "ext4", MS_NOATIME, NULL);
  const char *ws = cmdline_param("ws");
  mkdir("/newroot/workspace", 0755);
  if (ws && strcmp(ws, "virtiofs") == 0) {
    mount_or_die("ws", "/newroot/workspace", "virtiofs", MS_NOSUID | MS_NODEV, NULL);
  } else if (ws && strcmp(ws, "block") == 0) {
    if (wait_for("/dev/vdb", 10000) != 0) die("/dev/vdb did not appear");
    mount_or_die("/dev/vdb", "/newroot/workspace", "ext4", MS_NOSUID | MS_NODEV | MS_NOATIME, NULL);
  }
  mount_or_die("tmpfs", "/newroot/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  mount_or_die("tmpfs", "/newroot/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
  const char *moved[] = {"/proc", "/sys", "/dev"};
  for (int i = 0; i < 3; i++) {
    char dst[64];
    snprintf(dst, sizeof dst, "/newroot%s", moved[i]);
    mkdir(dst, 0755);
    if (mount(moved[i], dst, NULL, MS_MOVE, NULL) != 0) die(dst);
  }
  if (chdir("/newroot") != 0 || mount(".", "/", NULL, MS_MOVE, NULL) != 0 || chroot(".") != 0 ||
      chdir("/") != 0)
    die("switching to the root disk");
  mount_or_die("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "mode=0620,ptmxmode=0666");
  mount_or_die("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  setup_cgroups();
  setup_identity();
  write_file("/proc/self/oom_score_adj", "-1000");
}

static void reap_all(void) {
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

void shutdown_guest(void) {
  logmsg("shutting down");
  kill(-1, SIGTERM);
  for (int64_t end = now_ms() + 1000; now_ms() < end; usleep(10000)) {
    reap_all();
    if (kill(-1, 0) != 0 && errno == ESRCH) break;
  }
  kill(-1, SIGKILL);
  usleep(20000);
  reap_all();
  sync();
  if (umount2("/workspace", 0) != 0 && errno != EINVAL) umount2("/workspace", MNT_DETACH);
  if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY, NULL) != 0) logmsg("remount /: %s", strerror(errno));
  sync();
  logmsg("powering off");
  /* Firecracker ends the VM on a reset (reboot=k), QEMU (-no-reboot) on either. */
  const char *how = cmdline_param("poweroff");
  if (!how || strcmp(how, "reboot") != 0) reboot(RB_POWER_OFF);
  reboot(RB_AUTOBOOT);
  _exit(0);
}
