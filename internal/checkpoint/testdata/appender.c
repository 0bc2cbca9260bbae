/* Appends 600 records to argv[1] through two descriptors opened with
 * O_APPEND, one after the other, every NAP_MS ms; each record holds a running
 * hash of the ones before. Prints each step to stdout, then the hash. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#ifndef NAP_MS
#define NAP_MS 2 /* the migration suite (internal/itest) builds with 5 */
#endif
static void nap(void) {
	struct timespec ts = {0, NAP_MS * 1000 * 1000};
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}
int main(int argc, char **argv) {
	int a = open(argv[1], O_WRONLY | O_APPEND | O_CREAT | O_TRUNC, 0644);
	int b = open(argv[1], O_WRONLY | O_APPEND);
	if (a < 0 || b < 0) return 1;
	unsigned long h = 1469598103934665603UL;
	for (int i = 0; i < 600; i++) {
		char buf[64];
		h = (h ^ (unsigned long)i) * 1099511628211UL;
		int n = snprintf(buf, sizeof buf, "%d %016lx\n", i, h);
		if (write(i % 2 ? b : a, buf, n) != n) return 2;
		printf("%d\n", i);
		fflush(stdout);
		nap();
	}
	printf("done %016lx\n", h);
	return 0;
}
