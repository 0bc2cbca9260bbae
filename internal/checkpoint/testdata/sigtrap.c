/* A SIGTRAP handler across a restore: every 20 ms the program raises
 * SIGTRAP, and the handler writes 0, 1, 2... to argv[1]. Without its
 * handler the process dies of the signal. With argv[2] = "blocked" it
 * keeps SIGTRAP blocked except around each raise. */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
static int fd;
static long count;
static void on_trap(int sig) {
	char b[32];
	int n = sizeof b;
	long v = count++;
	b[--n] = '\n';
	do {
		b[--n] = '0' + v % 10;
		v /= 10;
	} while (v);
	if (write(fd, b + n, sizeof b - n) != (ssize_t)(sizeof b - n)) _exit(2);
	(void)sig;
}
int main(int argc, char **argv) {
	int blocked = argc > 2 && strcmp(argv[2], "blocked") == 0;
	fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
	if (fd < 0) return 1;
	struct sigaction sa = {.sa_handler = on_trap};
	sigaction(SIGTRAP, &sa, 0);
	sigset_t trap;
	sigemptyset(&trap);
	sigaddset(&trap, SIGTRAP);
	if (blocked) sigprocmask(SIG_BLOCK, &trap, 0);
	for (;;) {
		struct timespec ts = {0, 20000000};
		nanosleep(&ts, 0);
		if (blocked) sigprocmask(SIG_UNBLOCK, &trap, 0);
		raise(SIGTRAP);
		if (blocked) sigprocmask(SIG_BLOCK, &trap, 0);
	}
}
