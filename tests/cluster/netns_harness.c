/* netns_harness.c - hosts in network namespaces and faults between them (see netns_harness.h). */
#include "netns_harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NH_PROCS_MAX  32
#define NH_DIR_PREFIX "sluice-nh-"
#define NH_CUT_TABLE  "inet sluice_cut"
#define NH_CMD_MAX    4096

static struct nh_net *net_registry; /* one per test process */
static struct nh_proc *proc_registry[NH_PROCS_MAX];

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(uint32_t ms)
{
    struct timespec ts = {ms / 1000u, (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* 1 when `prog` is an executable in a directory of $PATH (the harness runs it through sh). */
static int on_path(const char *prog)
{
    const char *path = getenv("PATH");
    if (path == NULL) {
        return 0;
    }
    while (*path != '\0') {
        size_t len = strcspn(path, ":");
        char p[512];
        if (len > 0 && len < sizeof(p) - 64) {
            snprintf(p, sizeof(p), "%.*s/%s", (int)len, path, prog);
            if (access(p, X_OK) == 0) {
                return 1;
            }
        }
        path += len;
        path += *path == ':';
    }
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rmtree(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A directory left by a test process that is gone (killed before its atexit ran). */
static void sweep_stale_dirs(void)
{
    DIR *d = opendir("/var/tmp");
    if (d == NULL) {
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, NH_DIR_PREFIX, strlen(NH_DIR_PREFIX)) != 0) {
            continue;
        }
        long pid = strtol(e->d_name + strlen(NH_DIR_PREFIX), NULL, 10);
        if (pid == (long)getpid()) {
            continue;
        }
        /* (a pid reused since leaves its directory for a later sweep) */
        if (pid <= 0 || (kill((pid_t)pid, 0) != 0 && errno == ESRCH)) {
            char p[300];
            snprintf(p, sizeof(p), "/var/tmp/%s", e->d_name);
            rmtree(p);
        }
    }
    closedir(d);
}

/* Forks a child that enters `nsfd` (-1: stays) and runs `sh -c cmd`; its output goes to the
 * test's stderr. */
static int sh_in(int nsfd, const char *cmd)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(127);
        }
        if (nsfd >= 0 && setns(nsfd, CLONE_NEWNET) != 0) {
            fprintf(stderr, "setns: %s\n", strerror(errno));
            _exit(127);
        }
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            return -1;
        }
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int nh_sh(struct nh_net *n, const struct nh_host *h, const char *cmd)
{
    return sh_in(h != NULL ? h->nsfd : n->sw.nsfd, cmd);
}

int nh_available(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "SKIP: the fault tests make network namespaces and need root "
                        "(CAP_SYS_ADMIN and CAP_NET_ADMIN); run them as root, as CI does\n");
        return 77;
    }
    if (!on_path("ip") || !on_path("nft")) {
        fprintf(stderr,
                "SKIP: the fault tests need `ip` (%s) and `nft` (%s) on PATH; install them with "
                "`apt-get install iproute2 nftables` (deploy/install-test-deps.sh does), and "
                "put /usr/sbin on PATH\n",
                on_path("ip") ? "ok" : "missing", on_path("nft") ? "ok" : "missing");
        return 77;
    }
    /* Can this process make a namespace, a veth pair and an nftables table in it? (A container
     * without CAP_SYS_ADMIN, or a kernel without veth/nf_tables, says no here.) */
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 77;
    }
    if (pid == 0) {
        if (unshare(CLONE_NEWNET) != 0) {
            fprintf(stderr, "  unshare(CLONE_NEWNET): %s\n", strerror(errno));
            _exit(2);
        }
        int rc = system("ip link add nhprobe0 type veth peer name nhprobe1 && "
                        "nft add table inet sluice_probe");
        _exit(rc == 0 ? 0 : 3);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr,
                "SKIP: cannot make a network namespace with a veth pair and an nftables "
                "table here (status 0x%x, see above): the fault tests need root with "
                "CAP_SYS_ADMIN and CAP_NET_ADMIN and a kernel with veth and nf_tables "
                "(a privileged container, or the machine itself)\n",
                (unsigned)st);
        return 77;
    }
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

static void cleanup_at_exit(void)
{
    if (net_registry != NULL) {
        nh_net_cleanup(net_registry);
    }
}

/* On SIGTERM/SIGINT/SIGHUP (CTest's timeout, ^C): exit through atexit, so the directory goes. */
static void on_signal(int sig)
{
    (void)sig;
    exit(128 + sig);
}

/* Makes the holder of a new namespace: a child that unshares, says so through a pipe and waits
 * for its death (its parent's death kills it). */
static int make_holder(struct nh_host *h)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        perror("pipe2");
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(127);
        }
        close(pfd[0]);
        char ok = unshare(CLONE_NEWNET) == 0 ? 'y' : 'n';
        if (write(pfd[1], &ok, 1) != 1 || ok != 'y') {
            _exit(1);
        }
        close(pfd[1]);
        for (;;) {
            pause();
        }
    }
    close(pfd[1]);
    char ok = 0;
    ssize_t r = read(pfd[0], &ok, 1);
    close(pfd[0]);
    if (r != 1 || ok != 'y') {
        fprintf(stderr, "  %s: the namespace holder could not unshare its network namespace\n",
                h->name);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
    h->nsfd = open(path, O_RDONLY | O_CLOEXEC);
    if (h->nsfd < 0) {
        fprintf(stderr, "  open %s: %s\n", path, strerror(errno));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    h->holder = pid;
    return 0;
}

int nh_net_init(struct nh_net *n)
{
    memset(n, 0, sizeof(*n));
    n->sw.nsfd = -1;
    sweep_stale_dirs();
    snprintf(n->root, sizeof(n->root), "/var/tmp/" NH_DIR_PREFIX "%d-XXXXXX", (int)getpid());
    if (mkdtemp(n->root) == NULL) {
        perror("mkdtemp");
        return -1;
    }
    if (net_registry == NULL) {
        atexit(cleanup_at_exit);
        struct sigaction sa = {.sa_handler = on_signal};
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
    }
    net_registry = n;
    snprintf(n->sw.name, sizeof(n->sw.name), "switch");
    if (make_holder(&n->sw) != 0) {
        return -1;
    }
    if (nh_sh(n, NULL, "ip link add br0 type bridge && ip link set br0 up && ip link set lo up") !=
        0) {
        fprintf(stderr, "  cannot make the bridge in the switch namespace\n");
        return -1;
    }
    return 0;
}

int nh_host_add(struct nh_net *n, const char *name, uint32_t octet, struct nh_host **out)
{
    if (n->n >= NH_HOSTS_MAX || octet == 0 || octet > 254 || strlen(name) >= 12) {
        fprintf(stderr, "  nh_host_add %s: too many hosts, a bad octet or a long name\n", name);
        return -1;
    }
    for (uint32_t i = 0; i < n->n; i++) {
        if ((uint32_t)atoi(n->host[i].ip + strlen(NH_SUBNET)) == octet) {
            fprintf(stderr, "  nh_host_add %s: octet %u taken\n", name, octet);
            return -1;
        }
    }
    struct nh_host *h = &n->host[n->n];
    memset(h, 0, sizeof(*h));
    h->nsfd = -1;
    h->index = n->n;
    snprintf(h->name, sizeof(h->name), "%s", name);
    snprintf(h->ip, sizeof(h->ip), NH_SUBNET "%u", octet);
    if (make_holder(h) != 0) {
        return -1;
    }
    n->n++;
    /* The veth pair is made in the switch (so nothing appears in the test's own namespace), its
     * host end moved into the host by the holder's pid and renamed eth0 there. */
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "ip link add v%u type veth peer name p%u && ip link set p%u master br0 && "
             "ip link set p%u up && ip link set v%u netns %d",
             h->index, h->index, h->index, h->index, h->index, (int)h->holder);
    if (nh_sh(n, NULL, cmd) != 0) {
        fprintf(stderr, "  %s: cannot make its veth pair\n", name);
        return -1;
    }
    snprintf(cmd, sizeof(cmd),
             "ip link set lo up && ip link set v%u name eth0 && ip addr add %s/24 dev eth0 && "
             "ip link set eth0 up",
             h->index, h->ip);
    if (nh_sh(n, h, cmd) != 0) {
        fprintf(stderr, "  %s: cannot configure eth0 (%s)\n", name, h->ip);
        return -1;
    }
    *out = h;
    return 0;
}

int nh_enter(const struct nh_host *h)
{
    if (setns(h->nsfd, CLONE_NEWNET) != 0) {
        fprintf(stderr, "  setns into %s: %s\n", h->name, strerror(errno));
        return -1;
    }
    return 0;
}

/* Writes host i's table from the cut matrix: input from every cut peer dropped. Each host drops
 * what it receives from its cut peers, so a cut between i and j is enforced in both i and j, and
 * neither sender's stack sees an error (as with a real partition, not an EPERM from its own
 * output hook). The file replaces the table atomically (add + delete + define in one nft -f). */
static int apply_host(struct nh_net *n, uint32_t i)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/cut-%s.nft", n->root, n->host[i].name);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    fprintf(f, "add table " NH_CUT_TABLE "\ndelete table " NH_CUT_TABLE "\n");
    char set[NH_HOSTS_MAX * 18] = "";
    size_t len = 0;
    for (uint32_t j = 0; j < n->n; j++) {
        if (n->cut[i][j]) {
            len += (size_t)snprintf(set + len, sizeof(set) - len, "%s%s", len > 0 ? ", " : "",
                                    n->host[j].ip);
        }
    }
    if (len > 0) {
        fprintf(f,
                "table " NH_CUT_TABLE " {\n"
                "  chain in {\n"
                "    type filter hook input priority -200; policy accept;\n"
                "    ip saddr { %s } drop\n"
                "  }\n"
                "}\n",
                set);
    }
    fclose(f);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "nft -f '%s'", path);
    if (nh_sh(n, &n->host[i], cmd) != 0) {
        fprintf(stderr, "  %s: nft -f %s failed\n", n->host[i].name, path);
        return -1;
    }
    return 0;
}

int nh_cut(struct nh_net *n, const struct nh_host *h, struct nh_host *const *from, size_t count)
{
    bool touched[NH_HOSTS_MAX] = {false};
    for (size_t k = 0; k < count; k++) {
        uint32_t j = from[k]->index;
        if (j == h->index) {
            continue;
        }
        n->cut[h->index][j] = n->cut[j][h->index] = true;
        touched[j] = true;
    }
    touched[h->index] = true;
    int rc = 0;
    for (uint32_t i = 0; i < n->n; i++) {
        if (touched[i] && apply_host(n, i) != 0) {
            rc = -1;
        }
    }
    return rc;
}

int nh_heal(struct nh_net *n, const struct nh_host *h)
{
    bool touched[NH_HOSTS_MAX] = {false};
    for (uint32_t j = 0; j < n->n; j++) {
        if (n->cut[h->index][j]) {
            n->cut[h->index][j] = n->cut[j][h->index] = false;
            touched[j] = true;
        }
    }
    touched[h->index] = true;
    int rc = 0;
    for (uint32_t i = 0; i < n->n; i++) {
        if (touched[i] && apply_host(n, i) != 0) {
            rc = -1;
        }
    }
    return rc;
}

int nh_heal_all(struct nh_net *n)
{
    int rc = 0;
    for (uint32_t i = 0; i < n->n; i++) {
        if (nh_heal(n, &n->host[i]) != 0) {
            rc = -1;
        }
    }
    return rc;
}

/* ---- processes ---- */

static int spawn(struct nh_proc *p)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(127);
        }
        if (setns(p->host->nsfd, CLONE_NEWNET) != 0) {
            fprintf(stderr, "setns into %s: %s\n", p->host->name, strerror(errno));
            _exit(127);
        }
        int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
        int fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (in >= 0) {
            dup2(in, 0);
        }
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        /* the test's handlers are not the child's business */
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        execv(p->argv[0], p->argv);
        fprintf(stderr, "exec %s: %s\n", p->argv[0], strerror(errno));
        _exit(127);
    }
    p->pid = pid;
    return 0;
}

int nh_proc_start(struct nh_proc *p, struct nh_host *h, const char *log, const char *const *argv)
{
    memset(p, 0, sizeof(*p));
    p->host = h;
    snprintf(p->log, sizeof(p->log), "%s", log);
    size_t i = 0;
    for (; argv[i] != NULL; i++) {
        if (i >= NH_ARGS_MAX || strlen(argv[i]) >= sizeof(p->argv_buf[0])) {
            fprintf(stderr, "  nh_proc_start: too many or too long arguments\n");
            return -1;
        }
        snprintf(p->argv_buf[i], sizeof(p->argv_buf[0]), "%s", argv[i]);
        p->argv[i] = p->argv_buf[i];
    }
    p->argv[i] = NULL;
    int slot = -1;
    for (int k = 0; k < NH_PROCS_MAX; k++) {
        if (proc_registry[k] == p) {
            slot = k;
            break;
        }
        if (slot < 0 && proc_registry[k] == NULL) {
            slot = k;
        }
    }
    if (slot < 0) {
        fprintf(stderr, "  nh_proc_start: more than %d processes\n", NH_PROCS_MAX);
        return -1;
    }
    proc_registry[slot] = p;
    return spawn(p);
}

int nh_proc_restart(struct nh_proc *p)
{
    if (nh_proc_alive(p)) {
        fprintf(stderr, "  restart: %s still runs in %s\n", p->argv[0], p->host->name);
        return -1;
    }
    return spawn(p);
}

int nh_proc_alive(struct nh_proc *p)
{
    if (p->pid == 0) {
        return 0;
    }
    int st;
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == p->pid) {
        p->exit_status = st;
        p->pid = 0;
        return 0;
    }
    return 1;
}

int nh_proc_kill9(struct nh_proc *p)
{
    if (p->pid != 0) {
        kill(p->pid, SIGKILL);
        kill(p->pid, SIGCONT);
        int st;
        while (waitpid(p->pid, &st, 0) < 0 && errno == EINTR) {
        }
        p->exit_status = st;
        p->pid = 0;
    }
    return 0;
}

int nh_proc_stop(struct nh_proc *p, uint32_t wait_ms)
{
    if (p->pid == 0) {
        fprintf(stderr, "  stop: %s in %s is not running (last status 0x%x)\n", p->argv[0],
                p->host->name, (unsigned)p->exit_status);
        return -1;
    }
    kill(p->pid, SIGCONT);
    kill(p->pid, SIGTERM);
    uint64_t deadline = mono_ms() + wait_ms;
    while (nh_proc_alive(p)) {
        if (mono_ms() >= deadline) {
            fprintf(stderr, "  stop: %s in %s did not exit within %u ms of SIGTERM\n", p->argv[0],
                    p->host->name, wait_ms);
            nh_proc_kill9(p);
            return -1;
        }
        sleep_ms(5);
    }
    if (!WIFEXITED(p->exit_status) || WEXITSTATUS(p->exit_status) != 0) {
        fprintf(stderr, "  stop: %s in %s ended with status 0x%x\n", p->argv[0], p->host->name,
                (unsigned)p->exit_status);
        return -1;
    }
    return 0;
}

int nh_proc_pause(struct nh_proc *p)
{
    return p->pid != 0 && kill(p->pid, SIGSTOP) == 0 ? 0 : -1;
}

int nh_proc_resume(struct nh_proc *p)
{
    return p->pid != 0 && kill(p->pid, SIGCONT) == 0 ? 0 : -1;
}

void nh_proc_log_tail(const struct nh_proc *p, unsigned lines)
{
    char cmd[256];
    fprintf(stderr, "  --- last lines of %s (%s) ---\n", p->log, p->host->name);
    snprintf(cmd, sizeof(cmd), "tail -n %u '%s' >&2", lines, p->log);
    if (system(cmd) != 0) {
        fprintf(stderr, "  (no log)\n");
    }
}

int nh_proc_log_sanitizer(const struct nh_proc *p)
{
    char cmd[320];
    snprintf(cmd, sizeof(cmd),
             "grep -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' '%s' >&2", p->log);
    return system(cmd) == 0 ? 1 : 0;
}

void nh_net_cleanup(struct nh_net *n)
{
    for (int k = 0; k < NH_PROCS_MAX; k++) {
        if (proc_registry[k] != NULL) {
            nh_proc_kill9(proc_registry[k]);
            proc_registry[k] = NULL;
        }
    }
    for (uint32_t i = 0; i < n->n; i++) {
        struct nh_host *h = &n->host[i];
        if (h->holder > 0) {
            kill(h->holder, SIGKILL);
            waitpid(h->holder, NULL, 0);
            h->holder = 0;
        }
        if (h->nsfd >= 0) {
            close(h->nsfd);
            h->nsfd = -1;
        }
    }
    n->n = 0;
    if (n->sw.holder > 0) {
        kill(n->sw.holder, SIGKILL);
        waitpid(n->sw.holder, NULL, 0);
        n->sw.holder = 0;
    }
    if (n->sw.nsfd >= 0) {
        close(n->sw.nsfd);
        n->sw.nsfd = -1;
    }
    if (n->root[0] != '\0') {
        if (getenv("SLUICE_KEEP_NH") == NULL) {
            rmtree(n->root);
        } else {
            fprintf(stderr, "  kept %s (SLUICE_KEEP_NH)\n", n->root);
        }
        n->root[0] = '\0';
    }
    if (net_registry == n) {
        net_registry = NULL;
    }
}
