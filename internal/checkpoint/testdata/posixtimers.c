/* Creates a POSIX timer on its own thread's CPU-time clock, which a
 * restore cannot carry (the thread's id changes), then sleeps. */
#include <signal.h>
#include <time.h>
#include <unistd.h>
int main(void) {
	timer_t a;
	struct sigevent ev = {.sigev_notify = SIGEV_NONE};
	if (timer_create(CLOCK_THREAD_CPUTIME_ID, &ev, &a)) return 1;
	for (;;) sleep(1);
}
