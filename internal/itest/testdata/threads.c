/* Many threads with a mutex and condition variables across migrations:
 * argv[2] threads take turns, in order, argv[1] rounds; each turn sleeps
 * 2 ms outside the lock; thread 0 prints the round and a check that every
 * counter is equal at the start of each round; then "done" and the total. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static long rounds, *counts, total;
static int nthreads, turn;
static void *run(void *a) {
	int id = (int)(long)a;
	for (long r = 0; r < rounds; r++) {
		pthread_mutex_lock(&mu);
		while (turn != id) pthread_cond_wait(&cv, &mu);
		if (id == 0) {
			int same = 1;
			for (int i = 1; i < nthreads; i++) same &= counts[i] == counts[0];
			printf("round %ld %s\n", r, same ? "ok" : "BAD");
			fflush(stdout);
		}
		counts[id]++;
		total++;
		turn = (turn + 1) % nthreads;
		pthread_cond_broadcast(&cv);
		pthread_mutex_unlock(&mu);
		struct timespec ts = {0, 2 * 1000 * 1000};
		nanosleep(&ts, 0);
	}
	return 0;
}
int main(int argc, char **argv) {
	rounds = argc > 1 ? atol(argv[1]) : 300;
	nthreads = argc > 2 ? atoi(argv[2]) : 8;
	counts = calloc(nthreads, sizeof *counts);
	pthread_t t[64];
	for (long i = 0; i < nthreads; i++) pthread_create(&t[i], 0, run, (void *)i);
	for (int i = 0; i < nthreads; i++) pthread_join(t[i], 0);
	printf("done %ld\n", total);
	return 0;
}
