/* Process attributes across a restore. argv[1]: output file (a first
 * line "regions R S", then a counter line every 20 ms), argv[2]: a file to map shared, argv[3]: "set" to set
 * every attribute (root), "keep" to set none. At SIGUSR1 the program
 * checks its attributes and exits 0, or prints what changed and exits 3.
 * The test compares /proc/PID/smaps VmFlags of the regions it names,
 * and oom_score_adj, from outside. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/membarrier.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t done;
static void on_usr1(int sig) { done = 1; (void)sig; }

static int bad;
static void want(const char *what, long got, long w) {
	if (got != w) {
		dprintf(2, "attrs: %s is %ld, want %ld\n", what, got, w);
		bad = 1;
	}
}

static void line(int fd, long v) {
	char b[32];
	int n = sizeof b;
	b[--n] = '\n';
	do {
		b[--n] = '0' + v % 10;
		v /= 10;
	} while (v);
	if (write(fd, b + n, sizeof b - n) != (ssize_t)(sizeof b - n)) _exit(2);
}

int main(int argc, char **argv) {
	if (argc < 4) return 1;
	int set = strcmp(argv[3], "set") == 0;
	int out = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
	int mf = open(argv[2], O_RDWR);
	if (out < 0 || mf < 0) return 1;
	char *shared = mmap(0, 4096, PROT_READ, MAP_SHARED, mf, 0);
	char *r = mmap(0, 6 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED || r == MAP_FAILED) return 1;
	memset(r, 1, 6 * 4096);
	unsigned long pers = personality(0xffffffff);
	if (set) {
		int fd = open("/proc/self/oom_score_adj", O_WRONLY);
		if (fd < 0 || write(fd, "345", 3) != 3) return 4;
		close(fd);
		pers = personality(pers | ADDR_NO_RANDOMIZE) | ADDR_NO_RANDOMIZE;
		if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) || prctl(PR_SET_CHILD_SUBREAPER, 1) ||
		    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_DUMPABLE, 0))
			return 5;
		if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0)) return 6;
		/* Pages 0-4 get one advice each, separated by untouched pages so
		 * that the kernel cannot merge them: 0 DONTDUMP, 2 WIPEONFORK, 4
		 * locked; 1, 3 and 5 none. */
		if (madvise(r, 4096, MADV_DONTDUMP) || madvise(r + 2 * 4096, 4096, MADV_WIPEONFORK) ||
		    mlock(r + 4 * 4096, 4096))
			return 7;
		/* Page 5 gets a name (shown as [anon:ssi-name] in maps), where
		 * the kernel has CONFIG_ANON_VMA_NAME. */
		prctl(0x53564d41 /* PR_SET_VMA */, 0, (unsigned long)(r + 5 * 4096), 4096, "ssi-name");
	}
	dprintf(out, "regions %lx %lx\n", (unsigned long)r, (unsigned long)shared);
	struct sigaction sa = {.sa_handler = on_usr1};
	sigaction(SIGUSR1, &sa, 0);
	for (long n = 0; !done; n++) {
		line(out, n);
		struct timespec ts = {0, 20000000};
		nanosleep(&ts, 0);
	}
	want("dumpable", prctl(PR_GET_DUMPABLE), set ? 0 : 1);
	want("thp disable", prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0), set);
	int reaper = -1;
	prctl(PR_GET_CHILD_SUBREAPER, &reaper);
	want("child subreaper", reaper, set);
	want("no_new_privs", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), set);
	want("personality", personality(0xffffffff), pers);
	want("membarrier private expedited", syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0, set);
	want("mprotect of the shared mapping to writable", mprotect(shared, 4096, PROT_READ | PROT_WRITE) == 0, 1);
	return bad ? 3 : 0;
}
