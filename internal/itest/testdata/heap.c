/* A large heap verified by checksum across migrations: argv[2] MiB of
 * malloc'ed memory and 1 MiB of brk heap filled with a pattern; for
 * argv[1] generations, every 10 ms, it changes a few words of each
 * (deterministically) and prints the generation and both checksums. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#define SMALL (1 << 20)
static uint64_t sum(const uint64_t *p, size_t n) {
	uint64_t s = 0;
	for (size_t i = 0; i < n; i++) s = s * 31 + p[i];
	return s;
}
int main(int argc, char **argv) {
	long gens = argc > 1 ? atol(argv[1]) : 150;
	size_t big_len = (size_t)(argc > 2 ? atol(argv[2]) : 64) << 20;
	uint64_t *big = malloc(big_len), *small = sbrk(SMALL);
	if (!big || small == (void *)-1) return 1;
	size_t nb = big_len / 8, ns = SMALL / 8;
	for (size_t i = 0; i < nb; i++) big[i] = i * 0x9e3779b97f4a7c15ULL;
	for (size_t i = 0; i < ns; i++) small[i] = ~i;
	for (long g = 0; g < gens; g++) {
		for (int k = 0; k < 64; k++) {
			big[(g * 7919 + k * 104729) % nb] += g + k;
			small[(g * 31 + k * 17) % ns] ^= g * k;
		}
		printf("%ld %llx %llx\n", g, (unsigned long long)sum(big, nb), (unsigned long long)sum(small, ns));
		fflush(stdout);
		struct timespec ts = {0, 10 * 1000 * 1000};
		while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
			;
	}
	printf("done\n");
	return 0;
}
