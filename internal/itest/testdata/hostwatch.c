/* Prints "on HOST" and waits, checking its hostname every 100
 * microseconds, until the hostname changes (it was moved to a node with
 * another UTS namespace); then prints "now on HOST" and exits 3 at once,
 * before its deputy can re-attach to it there. */
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
int main(void) {
	struct utsname first, now;
	uname(&first);
	printf("on %s\n", first.nodename);
	fflush(stdout);
	for (;;) {
		struct timespec ts = {0, 100 * 1000};
		nanosleep(&ts, NULL);
		uname(&now);
		if (strcmp(now.nodename, first.nodename) != 0)
			break;
	}
	printf("now on %s\n", now.nodename);
	return 3;
}
