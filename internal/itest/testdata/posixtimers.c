/* Creates two POSIX timers with timer_create, then sleeps. */
#include <signal.h>
#include <time.h>
#include <unistd.h>
int main(void) {
	timer_t a, b;
	struct sigevent ev = {.sigev_notify = SIGEV_NONE};
	if (timer_create(CLOCK_MONOTONIC, &ev, &a) || timer_create(CLOCK_REALTIME, &ev, &b)) return 1;
	for (;;) sleep(1);
}
