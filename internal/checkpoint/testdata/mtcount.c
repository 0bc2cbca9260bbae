/* Four threads each increment their own counter under a shared mutex and
 * condition variable; thread 0 also prints every counter, the total and a
 * consistency check (total == sum of counters, under the mutex) to
 * argv[1] every 20 ms. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#define N 4
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static long counts[N], total;
static int turn; /* threads take turns: the condition variable is used */
static FILE *out;
static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}
static void *run(void *a) {
	int id = (int)(long)a;
	double next = now();
	for (;;) {
		pthread_mutex_lock(&mu);
		while (turn != id)
			pthread_cond_wait(&cv, &mu);
		counts[id]++;
		total++;
		turn = (turn + 1) % N;
		pthread_cond_broadcast(&cv);
		if (id == 0 && now() >= next) {
			long sum = 0;
			for (int i = 0; i < N; i++) sum += counts[i];
			fprintf(out, "%ld %ld %ld %ld %ld %s\n", counts[0], counts[1], counts[2], counts[3], total,
				sum == total ? "ok" : "BAD");
			fflush(out);
			next += 0.02;
		}
		pthread_mutex_unlock(&mu);
		usleep(200);
	}
	return 0;
}
int main(int argc, char **argv) {
	if (argc < 2 || !(out = fopen(argv[1], "w"))) return 2;
	pthread_t t[N];
	for (long i = 0; i < N; i++) pthread_create(&t[i], 0, run, (void *)i);
	for (int i = 0; i < N; i++) pthread_join(t[i], 0);
	return 0;
}
