/* Blocks SIGRTMIN+1 and queues it twice: value 7 to the thread queue
 * (pthread_sigqueue), value 9 to the process queue (sigqueue); writes
 * "queued" to argv[1], waits until argv[2] exists, unblocks and writes
 * the values its SA_SIGINFO handler received, in order. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
static int got[8], ngot;
static void on_rt(int sig, siginfo_t *si, void *uc) {
	if (ngot < 8) got[ngot++] = si->si_value.sival_int;
	(void)sig, (void)uc;
}
int main(int argc, char **argv) {
	int fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
	if (fd < 0) return 1;
	int sig = SIGRTMIN + 1;
	struct sigaction sa = {.sa_sigaction = on_rt, .sa_flags = SA_SIGINFO};
	sigaction(sig, &sa, 0);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_BLOCK, &set, 0);
	if (pthread_sigqueue(pthread_self(), sig, (union sigval){.sival_int = 7})) return 3;
	if (sigqueue(getpid(), sig, (union sigval){.sival_int = 9})) return 4;
	write(fd, "queued\n", 7);
	while (access(argv[2], F_OK) != 0) usleep(10000);
	sigprocmask(SIG_UNBLOCK, &set, 0);
	char b[128];
	int n = 0;
	for (int i = 0; i < ngot; i++) n += snprintf(b + n, sizeof b - n, i ? " %d" : "%d", got[i]);
	b[n++] = '\n';
	write(fd, b, n);
	for (;;) pause();
}
