/*
 * Warren guest agent: shared declarations. The agent is PID 1 of a Warren microVM. It mounts the
 * guest's file systems (boot.c) and then serves the host over virtio-serial ports or vsock
 * (agent.c). Protocol constants here must match src/drivers/microvm/protocol.ts.
 */
#ifndef WARREN_AGENT_H
#define WARREN_AGENT_H

#include <stddef.h>
#include <stdint.h>

#define AGENT_VERSION "1"

/* Frame: magic u32, payload length u32, type u8, 3 bytes zero, id u32, payload. Little-endian. */
#define FRAME_MAGIC 0x314e5257u /* "WRN1" */
#define FRAME_HEADER 16
#define FRAME_MAX (16u << 20)

/* Host to guest. */
#define T_HELLO 1    /* payload: host time in ms since the epoch (decimal text) */
#define T_EXEC 2     /* payload: u32 flags, u32 timeout ms, u32 argc, u32 envc, cwd\0 argv\0... env\0... */
#define T_STDIN 3    /* payload: bytes; an empty payload closes stdin */
#define T_KILL 4     /* kill the command and everything it started */
#define T_PING 5     /* health */
#define T_SHUTDOWN 6 /* end every process, sync, unmount, power off */

/* Guest to host. */
#define R_HELLO 0x81    /* payload: "warren-agent <version>" */
#define R_STDOUT 0x82   /* payload: bytes */
#define R_STDERR 0x83   /* payload: bytes */
#define R_EXIT 0x84     /* payload: i32 exit code, u32 timed out */
#define R_ERROR 0x85    /* payload: message; the request failed */
#define R_PONG 0x86     /* payload: "key=value ..." facts */
#define R_SHUTDOWN 0x87 /* the guest is about to power off */

#define EXEC_DETACH 1u

/* The unprivileged user commands run as (matches the bwrap driver's user inside a sandbox). */
#define SANDBOX_UID 1000

/* Root of the cgroup that holds every command (pids.max is set on it). */
#define CGROUP_ROOT "/sys/fs/cgroup/warren"

/* Logs a line to the console (the host keeps it as the sandbox's log). */
void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Value of `warren.<key>=` on the kernel command line, or NULL. */
const char *cmdline_param(const char *key);

/* Mounts the root disk, /workspace and the rest, then chroots into the root disk. */
void boot(void);

/* Whether the cgroup v2 hierarchy for commands is usable. */
extern int have_cgroups;

/* Writes a string to a file; returns 0 or -1 with errno. */
int write_file(const char *path, const char *text);

/* Ends every process, syncs and unmounts, then powers off. Does not return. */
void shutdown_guest(void) __attribute__((noreturn));

/* Monotonic milliseconds. */
int64_t now_ms(void);

#endif
