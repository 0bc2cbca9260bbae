/* A Unix stream socketpair inside one process across a restore: a
 * self-pipe made of it (end b non-blocking) that every round writes one
 * byte into and polls and reads back, with "kept" waiting unread in end
 * a's queue from the start (read at the end through a duplicate at fd
 * 21) and "back" in end b's. Each round writes 0, 1, 2... to argv[1]. At
 * SIGUSR1 the program exits 0 if both queues still hold their words, or
 * 3. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
static volatile sig_atomic_t done;
static void on_usr1(int sig) { done = 1; (void)sig; }
int main(int argc, char **argv) {
	if (argc < 2) return 1;
	int out = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
	int sv[2], self[2];
	if (out < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, self)) return 1;
	fcntl(self[1], F_SETFL, O_NONBLOCK);
	if (write(sv[1], "kept", 4) != 4 || write(sv[0], "back", 4) != 4 || dup2(sv[0], 21) != 21) return 2;
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
	char a[8] = {0}, b[8] = {0};
	if (read(21, a, 4) != 4 || memcmp(a, "kept", 4) || read(sv[1], b, 4) != 4 || memcmp(b, "back", 4)) return 3;
	if (!(fcntl(self[1], F_GETFL) & O_NONBLOCK)) return 3;
	return 0;
}
