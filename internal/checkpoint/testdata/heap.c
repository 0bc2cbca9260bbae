/* Fills 64 MiB of malloc'ed memory and 1 MiB of brk heap with a pattern,
 * then every 20 ms writes "gen sum" lines to argv[1], recomputing the sum. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#define BIG (64 << 20)
#define SMALL (1 << 20)
static uint64_t sum(const uint64_t *p, size_t n) {
	uint64_t s = 0;
	for (size_t i = 0; i < n; i++) s = s * 31 + p[i];
	return s;
}
int main(int argc, char **argv) {
	int fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
	uint64_t *big = malloc(BIG), *small = sbrk(SMALL);
	if (fd < 0 || !big || small == (void *)-1) return 1;
	for (size_t i = 0; i < BIG / 8; i++) big[i] = i * 0x9e3779b97f4a7c15ULL;
	for (size_t i = 0; i < SMALL / 8; i++) small[i] = ~i;
	for (long gen = 0;; gen++) {
		char b[64];
		int n = snprintf(b, sizeof b, "%ld %llx %llx\n", gen,
			(unsigned long long)sum(big, BIG / 8), (unsigned long long)sum(small, SMALL / 8));
		if (write(fd, b, n) != n) return 2;
		struct timespec ts = {0, 20 * 1000 * 1000};
		while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
			;
	}
}
