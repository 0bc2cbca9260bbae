/* Pipes inside one process across a restore: a self-pipe (the write end
 * non-blocking) that a timer-driven loop writes one byte into every 20
 * ms and polls and reads back, a second pipe that holds "kept" (never
 * read until the end) and whose read end is duplicated at fd 20. Each
 * round writes 0, 1, 2... to argv[1]. At SIGUSR1 the program exits 0 if
 * the second pipe still holds "kept" (read through fd 20) and the
 * self-pipe works, or 3. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
static volatile sig_atomic_t done;
static void on_usr1(int sig) { done = 1; (void)sig; }
int main(int argc, char **argv) {
	if (argc < 2) return 1;
	int out = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
	int self[2], kept[2];
	if (out < 0 || pipe(self) || pipe(kept)) return 1;
	fcntl(self[1], F_SETFL, O_NONBLOCK);
	if (write(kept[1], "kept", 4) != 4 || dup2(kept[0], 20) != 20) return 2;
	struct sigaction sa = {.sa_handler = on_usr1};
	sigaction(SIGUSR1, &sa, 0);
	for (long n = 0; !done; n++) {
		if (write(self[1], "x", 1) != 1) return 3;
		struct pollfd p = {.fd = self[0], .events = POLLIN};
		if (poll(&p, 1, 20) != 1) return 3;
		char c;
		if (read(self[0], &c, 1) != 1 || c != 'x') return 3;
		char b[32], t[32];
		int k = 0, j = 0;
		long v = n;
		do t[k++] = '0' + v % 10; while (v /= 10);
		while (k) b[j++] = t[--k];
		b[j++] = '\n';
		if (write(out, b, j) != j) return 4;
		usleep(20000);
	}
	char b[8] = {0};
	if (read(20, b, 4) != 4 || memcmp(b, "kept", 4)) return 3;
	if (fcntl(self[1], F_GETFL) & O_NONBLOCK ? 0 : 1) return 3;
	return 0;
}
