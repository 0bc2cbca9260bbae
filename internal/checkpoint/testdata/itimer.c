/* A 20 ms ITIMER_REAL; the SIGALRM handler writes 0, 1, 2... one per
 * expiry to argv[1]. main only pauses. */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>
static int fd;
static long count;
static void on_alrm(int sig) {
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
	fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
	if (fd < 0) return 1;
	struct sigaction sa = {.sa_handler = on_alrm};
	sigaction(SIGALRM, &sa, 0);
	struct itimerval it = {{0, 20000}, {0, 20000}};
	setitimer(ITIMER_REAL, &it, 0);
	for (;;) pause();
}
