/* Writes "N C U V" every 10 ms to argv[1] (O_APPEND): N counts 0, 1, 2...,
 * C, U and V how many SIGCONT, SIGUSR1 and SIGUSR2 its handlers got. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
static volatile sig_atomic_t got[3];
static void on(int sig) { got[sig == SIGCONT ? 0 : sig == SIGUSR1 ? 1 : 2]++; }
int main(int argc, char **argv) {
	int fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
	if (fd < 0) return 1;
	struct sigaction sa = {.sa_handler = on, .sa_flags = SA_RESTART};
	sigaction(SIGCONT, &sa, 0);
	sigaction(SIGUSR1, &sa, 0);
	sigaction(SIGUSR2, &sa, 0);
	for (long i = 0;; i++) {
		char b[64];
		int n = snprintf(b, sizeof b, "%ld %d %d %d\n", i, (int)got[0], (int)got[1], (int)got[2]);
		if (write(fd, b, n) != n) return 2;
		struct timespec ts = {0, 10 * 1000 * 1000};
		while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
			;
	}
}
