/* Signal handlers and timers across migrations: a 10 ms ITIMER_REAL whose
 * SIGALRM handler counts ticks; main waits in sigsuspend and prints
 * "tick N" for each of argv[1] ticks; every 50 ticks it raises SIGUSR1,
 * whose handler runs on an alternate stack and notes whether it did;
 * SIGUSR2 is ignored and raised too; SIGHUP stays blocked and pending. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
static volatile sig_atomic_t ticks, usr1, onstack;
static void on_alrm(int sig) { ticks++; }
static void on_usr1(int sig) {
	stack_t ss;
	sigaltstack(0, &ss);
	usr1++;
	onstack += (ss.ss_flags & SS_ONSTACK) != 0;
}
int main(int argc, char **argv) {
	long n = argc > 1 ? atol(argv[1]) : 300;
	stack_t ss = {.ss_sp = malloc(65536), .ss_size = 65536};
	sigaltstack(&ss, 0);
	struct sigaction sa = {.sa_handler = on_usr1, .sa_flags = SA_ONSTACK};
	sigaction(SIGUSR1, &sa, 0);
	struct sigaction al = {.sa_handler = on_alrm};
	sigaction(SIGALRM, &al, 0);
	signal(SIGUSR2, SIG_IGN);
	sigset_t block, wait;
	sigemptyset(&block);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGALRM);
	sigprocmask(SIG_BLOCK, &block, &wait);
	sigdelset(&wait, SIGALRM);
	sigaddset(&wait, SIGHUP);
	raise(SIGHUP); /* stays pending, blocked */
	struct itimerval it = {{0, 10000}, {0, 10000}};
	setitimer(ITIMER_REAL, &it, 0);
	long seen = 0;
	while (seen < n) {
		while (ticks == seen) sigsuspend(&wait);
		for (; seen < ticks && seen < n; seen++) {
			printf("tick %ld\n", seen);
			if (seen % 50 == 49) {
				raise(SIGUSR1);
				raise(SIGUSR2);
				printf("usr1 %d on the alternate stack %d\n", (int)usr1, (int)onstack);
			}
		}
		fflush(stdout);
	}
	sigset_t pend;
	sigpending(&pend);
	printf("done; SIGHUP pending %d\n", sigismember(&pend, SIGHUP));
	return 0;
}
