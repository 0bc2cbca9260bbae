/* Pipes and Unix stream socketpairs inside one process across a restore.
 * Two self-pipes, a pipe and a socketpair (their write ends
 * non-blocking), each written one byte into and polled and read back
 * every round; a pipe that holds "kept" (read at the end through a
 * duplicate of its read end at fd 20) and a socketpair with "kept" and
 * "back" queued one each way (one end duplicated at fd 21). Each round
 * writes 0, 1, 2... to argv[1]. At SIGUSR1 the program exits 0 if every
 * queue still holds its word and the flags are as set, or 3. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
static volatile sig_atomic_t done;
static void on_usr1(int sig) { done = 1; (void)sig; }
static int roundtrip(int w, int r) {
	char c;
	struct pollfd p = {.fd = r, .events = POLLIN};
	return write(w, "x", 1) == 1 && poll(&p, 1, 20) == 1 && read(r, &c, 1) == 1 && c == 'x';
}
static int holds(int fd, const char *word) {
	char b[8] = {0};
	return read(fd, b, 4) == 4 && memcmp(b, word, 4) == 0;
}
int main(int argc, char **argv) {
	if (argc < 2) return 1;
	int out = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
	int self[2], kept[2], sself[2], sv[2];
	if (out < 0 || pipe(self) || pipe(kept) || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sself) ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return 1;
	fcntl(self[1], F_SETFL, O_NONBLOCK);
	fcntl(sself[1], F_SETFL, O_NONBLOCK);
	if (write(kept[1], "kept", 4) != 4 || dup2(kept[0], 20) != 20) return 2;
	if (write(sv[1], "kept", 4) != 4 || write(sv[0], "back", 4) != 4 || dup2(sv[0], 21) != 21) return 2;
	struct sigaction sa = {.sa_handler = on_usr1};
	sigaction(SIGUSR1, &sa, 0);
	for (long n = 0; !done; n++) {
		if (!roundtrip(self[1], self[0]) || !roundtrip(sself[1], sself[0])) return 3;
		char b[32], t[32];
		int k = 0, j = 0;
		long v = n;
		do t[k++] = '0' + v % 10; while (v /= 10);
		while (k) b[j++] = t[--k];
		b[j++] = '\n';
		if (write(out, b, j) != j) return 4;
		usleep(20000);
	}
	if (!holds(20, "kept") || !holds(21, "kept") || !holds(sv[1], "back")) return 3;
	if (!(fcntl(self[1], F_GETFL) & O_NONBLOCK) || !(fcntl(sself[1], F_GETFL) & O_NONBLOCK)) return 3;
	return 0;
}
