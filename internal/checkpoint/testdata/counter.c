/* Writes 0, 1, 2... one per line to argv[1] (O_APPEND) and to stdout,
 * every 10 ms. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
	int fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
	if (fd < 0) return 1;
	for (long i = 0;; i++) {
		char b[32];
		int n = snprintf(b, sizeof b, "%ld\n", i);
		if (write(fd, b, n) != n) return 2;
		printf("%ld\n", i);
		fflush(stdout);
		struct timespec ts = {0, 10 * 1000 * 1000};
		while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
			;
	}
}
