/* netns_harness.h - hosts for the cluster fault tests (tests/cluster/): each a network namespace
 * of its own, with its own address on one private bridge, so a link between two hosts can be cut
 * and healed on its own.
 *
 * Layout: a "switch" namespace holds the bridge br0; each host is a namespace with lo and eth0
 * (NH_SUBNET.<octet>/24), the other end of its veth pair a port of br0. Nothing is created in
 * the namespace the test starts in, and nothing is named (no /run/netns entry): every namespace is
 * held by a small child process (a "holder") that has PR_SET_PDEATHSIG SIGKILL, so when the test
 * process dies in any way (a failed CHECK, a CTest timeout's SIGKILL) the holders die, the
 * namespaces go with their last process, and the veth pairs and the bridge with them. Processes
 * started in a host (nh_proc_start) also get PR_SET_PDEATHSIG SIGKILL. The directory for logs and
 * rule files, /var/tmp/sluice-nh-<pid>-XXXXXX, is removed at exit; one left by a test that was
 * killed is removed by the next test that starts (its pid is dead).
 *
 * Faults: nh_cut(h, set) drops every packet between h and each host of `set`, both directions,
 * with an nftables table ("inet sluice_cut", input hook) in each of the namespaces involved: a
 * silent partition (the sender's stack sees no error, as with a pulled cable), for connections
 * already open and for new ones. nh_heal(h) removes h's cuts. Processes: SIGKILL, SIGSTOP/SIGCONT,
 * SIGTERM, restart with the same command line. Needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN), `ip`
 * (iproute2) and `nft` (nftables); nh_available says which is missing and returns 77.
 */
#ifndef SL_NETNS_HARNESS_H
#define SL_NETNS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define NH_SUBNET    "10.77.0."
#define NH_HOSTS_MAX 16
#define NH_ARGS_MAX  40

struct nh_host {
    char name[16];  /* "zk1", "b2", "client": the log lines and the veth's name */
    char ip[16];    /* NH_SUBNET "<octet>" */
    uint32_t index; /* in nh_net.host[] */
    pid_t holder;   /* the process that keeps the namespace alive */
    int nsfd;       /* /proc/<holder>/ns/net, for setns */
};

struct nh_net {
    char root[80];     /* /var/tmp/sluice-nh-<pid>-XXXXXX: logs, data, rule files */
    struct nh_host sw; /* the switch: the bridge br0, no address */
    struct nh_host host[NH_HOSTS_MAX];
    uint32_t n;
    /* cut[i][j]: packets between host i and host j are dropped (symmetric) */
    bool cut[NH_HOSTS_MAX][NH_HOSTS_MAX];
};

/* A process in a host. Its stdout and stderr go to `log` (appended across restarts). */
struct nh_proc {
    struct nh_host *host;
    char log[160];
    char argv_buf[NH_ARGS_MAX][256];
    char *argv[NH_ARGS_MAX + 1];
    pid_t pid;       /* 0 when not running */
    int exit_status; /* waitpid status of the last exit */
};

/* 0 when namespaces, veth pairs and nftables can be used here (root, `ip`, `nft`, a test
 * namespace can be made); else prints why and how to get them and returns 77 (skip). */
int nh_available(void);

/* Creates the directory and the switch. Returns 0 or -1 (after printing why). */
int nh_net_init(struct nh_net *n);

/* Adds a host named `name` at NH_SUBNET<octet> (1..254, unique), lo and eth0 up. */
int nh_host_add(struct nh_net *n, const char *name, uint32_t octet, struct nh_host **out);

/* Moves the calling thread into h's namespace: the sockets it opens afterwards (and the processes
 * it forks, popen included) are in h. The test's own host (the "client"), entered once after the
 * hosts are made. Returns 0 or -1. */
int nh_enter(const struct nh_host *h);

/* Cuts h from each host of `from` (both directions), in addition to cuts already made. */
int nh_cut(struct nh_net *n, const struct nh_host *h, struct nh_host *const *from, size_t count);

/* Removes every cut between h and another host. nh_heal_all: every cut. */
int nh_heal(struct nh_net *n, const struct nh_host *h);
int nh_heal_all(struct nh_net *n);

/* Runs `sh -c cmd` in h's namespace (NULL: the switch); returns its exit status or -1. */
int nh_sh(struct nh_net *n, const struct nh_host *h, const char *cmd);

/* Starts argv (NULL-terminated, argv[0] an absolute path) in host h, PR_SET_PDEATHSIG SIGKILL,
 * stdin /dev/null, stdout and stderr appended to `log`. Returns 0 or -1. Does not wait for it to
 * be ready: the caller knows what ready means. */
int nh_proc_start(struct nh_proc *p, struct nh_host *h, const char *log, const char *const *argv);

/* Starts it again with the same command line (after it exited or was killed). */
int nh_proc_restart(struct nh_proc *p);

/* 1 while it runs (reaps it when it exited: p->exit_status), else 0. */
int nh_proc_alive(struct nh_proc *p);

/* SIGKILL (after SIGCONT, so a paused process dies too) and reap. Returns 0. */
int nh_proc_kill9(struct nh_proc *p);

/* SIGTERM, then waits up to wait_ms; SIGKILL after that. Returns 0 when it exited with status 0,
 * else -1 (printing how it ended). */
int nh_proc_stop(struct nh_proc *p, uint32_t wait_ms);

/* SIGSTOP / SIGCONT. */
int nh_proc_pause(struct nh_proc *p);
int nh_proc_resume(struct nh_proc *p);

/* Prints the last `lines` lines of p's log to stderr. */
void nh_proc_log_tail(const struct nh_proc *p, unsigned lines);

/* 1 when p's log holds a sanitizer report (AddressSanitizer, LeakSanitizer, UBSan's "runtime
 * error:"), printing the lines; else 0. */
int nh_proc_log_sanitizer(const struct nh_proc *p);

/* Kills the holders (so every namespace, veth and process in them goes) and removes the
 * directory (kept with SLUICE_KEEP_NH set). Safe to call twice; also run at exit. */
void nh_net_cleanup(struct nh_net *n);

#endif
