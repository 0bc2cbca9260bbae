/* Prints 0 .. argv[1]-1 on stdout, one every 10 ms (nanosleep, restarted
 * after EINTR), then "done". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
int main(int argc, char **argv) {
	long n = argc > 1 ? atol(argv[1]) : 300;
	for (long i = 0; i < n; i++) {
		printf("%ld\n", i);
		fflush(stdout);
		struct timespec ts = {0, 10 * 1000 * 1000};
		while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
			;
	}
	printf("done\n");
	return 0;
}
