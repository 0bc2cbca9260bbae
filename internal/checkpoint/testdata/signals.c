/* Counts to argv[1] like counter.c; SIGUSR1 runs a handler on an
 * alternate stack that writes "usr1 N"; SIGUSR2 is ignored; SIGHUP is
 * blocked. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
static volatile sig_atomic_t got;
static int fd;
static void on_usr1(int sig) {
	stack_t ss;
	sigaltstack(0, &ss);
	got += (ss.ss_flags & SS_ONSTACK) ? 1 : 1000;
}
int main(int argc, char **argv) {
	fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
	stack_t ss = {.ss_sp = malloc(65536), .ss_size = 65536};
	sigaltstack(&ss, 0);
	struct sigaction sa = {.sa_handler = on_usr1, .sa_flags = SA_ONSTACK};
	sigaction(SIGUSR1, &sa, 0);
	signal(SIGUSR2, SIG_IGN);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, 0);
	long seen = 0;
	for (long i = 0;; i++) {
		char b[64];
		int n = snprintf(b, sizeof b, "%ld\n", i);
		if (got != seen) {
			seen = got;
			n = snprintf(b, sizeof b, "%ld usr1 %ld\n", i, seen);
		}
		if (write(fd, b, n) != n) return 2;
		struct timespec ts = {0, 10 * 1000 * 1000};
		while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
			;
	}
}
