/* Deleted files across a restore: an O_TMPFILE file in argv[2] and a
 * file made there and unlinked, each written 0, 1, 2... as argv[1] is.
 * At SIGUSR1 the program reads both back from the start and exits 0 if
 * each holds every line written, or 3. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
static volatile sig_atomic_t done;
static void on_usr1(int sig) { done = 1; (void)sig; }
static char all[1 << 20];
static size_t len;
static int check(int fd) {
	static char b[1 << 20];
	ssize_t n = pread(fd, b, sizeof b, 0);
	return n == (ssize_t)len && memcmp(b, all, len) == 0;
}
int main(int argc, char **argv) {
	if (argc < 3) return 1;
	int out = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
	int t = open(argv[2], O_TMPFILE | O_RDWR | O_NOFOLLOW, 0600); /* as python's tempfile */
	char name[4096];
	snprintf(name, sizeof name, "%s/unlinked", argv[2]);
	int u = open(name, O_RDWR | O_CREAT | O_APPEND, 0640);
	if (out < 0 || t < 0 || u < 0 || unlink(name)) return 2;
	struct sigaction sa = {.sa_handler = on_usr1};
	sigaction(SIGUSR1, &sa, 0);
	for (long n = 0; !done && len < sizeof all - 32; n++) {
		char b[32];
		int k = snprintf(b, sizeof b, "%ld\n", n);
		if (write(t, b, k) != k || write(u, b, k) != k || write(out, b, k) != k) return 4;
		memcpy(all + len, b, k);
		len += k;
		struct timespec ts = {0, 20000000};
		nanosleep(&ts, 0);
	}
	return check(t) && check(u) ? 0 : 3;
}
