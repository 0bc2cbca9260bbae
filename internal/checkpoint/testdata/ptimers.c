/* POSIX timers across a restore. Timer 0 is made and deleted (its id
 * stays free); then: a 20 ms periodic CLOCK_MONOTONIC timer sending
 * SIGRTMIN+1 with value 0x1234, whose handler writes 0, 1, 2... to
 * argv[1]; a 1000 s CLOCK_REALTIME timer with no notification; a 10 ms
 * periodic timer signalling (SIGEV_THREAD_ID) a second thread, which
 * counts what it gets. At SIGUSR1 the program exits 0 if every timer is
 * as it should be (ids, time left, the thread's signals), or 10-15
 * saying which is not. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
static int out;
static long count;
static volatile sig_atomic_t done, bad;
static volatile long thread_hits;
static volatile pid_t thread_tid, wrong_thread;
static void on_tick(int sig, siginfo_t *si, void *uc) {
	char b[32], t[32];
	int k = 0, j = 0;
	long v = count++;
	if (si->si_value.sival_ptr != (void *)0x1234) bad = 1;
	do t[k++] = '0' + v % 10; while (v /= 10);
	while (k) b[j++] = t[--k];
	b[j++] = '\n';
	if (write(out, b, j) != j) _exit(2);
	(void)sig, (void)uc;
}
static void on_thread(int sig) {
	if (syscall(SYS_gettid) != thread_tid) wrong_thread = 1;
	thread_hits++;
	(void)sig;
}
static void on_usr1(int sig) { done = 1; (void)sig; }
static void *thread(void *arg) {
	thread_tid = syscall(SYS_gettid);
	for (;;) pause();
	return arg;
}
int main(int argc, char **argv) {
	if (argc < 2) return 1;
	out = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
	struct sigaction sa = {.sa_sigaction = on_tick, .sa_flags = SA_SIGINFO | SA_RESTART};
	sigaction(SIGRTMIN + 1, &sa, 0);
	struct sigaction st = {.sa_handler = on_thread, .sa_flags = SA_RESTART};
	sigaction(SIGRTMIN + 2, &st, 0);
	struct sigaction su = {.sa_handler = on_usr1};
	sigaction(SIGUSR1, &su, 0);
	/* Only the second thread takes SIGRTMIN+2. */
	pthread_t th;
	pthread_create(&th, 0, thread, 0);
	while (!thread_tid) usleep(1000);
	sigset_t m;
	sigemptyset(&m);
	sigaddset(&m, SIGRTMIN + 2);
	sigprocmask(SIG_BLOCK, &m, 0);
	timer_t t0, tick, far, tt;
	struct sigevent none = {.sigev_notify = SIGEV_NONE};
	if (timer_create(CLOCK_MONOTONIC, &none, &t0) || timer_delete(t0)) return 4;
	struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGRTMIN + 1, .sigev_value.sival_ptr = (void *)0x1234};
	struct sigevent evt = {.sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGRTMIN + 2};
	evt._sigev_un._tid = thread_tid;
	if (timer_create(CLOCK_MONOTONIC, &ev, &tick) || timer_create(CLOCK_REALTIME, &none, &far) ||
	    timer_create(CLOCK_MONOTONIC, &evt, &tt))
		return 5;
	struct itimerspec p20 = {{0, 20000000}, {0, 20000000}}, p10 = {{0, 10000000}, {0, 10000000}}, once = {{0, 0}, {1000, 0}};
	if (timer_settime(tick, 0, &p20, 0) || timer_settime(far, 0, &once, 0) || timer_settime(tt, 0, &p10, 0)) return 6;
	while (!done) pause();
	struct itimerspec g;
	long before = thread_hits;
	struct timespec ts = {0, 100000000};
	nanosleep(&ts, 0);
	if (bad) return 10;
	if (wrong_thread) return 11;
	if (thread_hits <= before) return 12;
	if (timer_gettime(far, &g) || g.it_value.tv_sec < 900 || g.it_value.tv_sec > 1000 || g.it_interval.tv_sec) return 13;
	if (timer_gettime(tick, &g) || g.it_interval.tv_nsec != 20000000) return 14;
	if (timer_gettime(t0, &g) == 0) return 15; /* deleted: its id stays free */
	return 0;
}
