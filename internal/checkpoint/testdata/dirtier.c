/* Writes a known pattern over argv[1] MiB continuously: iteration c
 * writes c into 8 words of page c % N. argv[2] pages are written per
 * 10 ms tick (0: no pause). A 1 MiB "quiet" area is filled once and
 * never written again. Prints "ready BUF QUIET N" once; on SIGUSR1 it
 * checks every page and prints "ok COUNTER" or "bad PAGE VALUE". On
 * SIGUSR2 it maps and fills 1 MiB more ("mapped ADDR"), checked too,
 * and empties the second half of the quiet area with MADV_DONTNEED. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

static volatile sig_atomic_t asked;
static volatile sig_atomic_t grow;
static void onusr1(int s) { (void)s; asked = 1; }
static void onusr2(int s) { (void)s; grow = 1; }

int main(int argc, char **argv) {
	size_t n = ((size_t)atoi(argv[1]) << 20) / 4096;
	long per = argc > 2 ? atol(argv[2]) : 0;
	uint64_t *buf = mmap(0, n * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t *quiet = mmap(0, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED || quiet == MAP_FAILED) return 1;
	for (size_t i = 0; i < (1 << 20) / 8; i++) quiet[i] = i * 7 + 1;
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < 8; k++) buf[i * 512 + k * 64] = i;
	signal(SIGUSR1, onusr1);
	signal(SIGUSR2, onusr2);
	uint64_t *extra = 0;
	printf("ready %p %p %zu\n", (void *)buf, (void *)quiet, n);
	fflush(stdout);
	uint64_t c = n;
	struct timespec tick = {0, 10 * 1000 * 1000};
	for (;;) {
		for (long j = 0; j < (per ? per : 1000); j++, c++) {
			uint64_t *pg = buf + (c % n) * 512;
			for (int k = 0; k < 8; k++) pg[k * 64] = c;
		}
		if (per) nanosleep(&tick, 0);
		if (grow && !extra) {
			extra = mmap(0, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			for (size_t i = 0; i < (1 << 20) / 8; i++) extra[i] = i * 13 + 5;
			madvise((char *)quiet + (1 << 19), 1 << 19, MADV_DONTNEED);
			printf("mapped %p\n", (void *)extra);
			fflush(stdout);
		}
		if (asked) {
			asked = 0;
			int bad = 0;
			for (size_t i = 0; i < n && !bad; i++) {
				/* page i was last written with the largest value
				 * below c that is i modulo n */
				uint64_t v = c - 1 - ((c - 1 - i) % n);
				for (int k = 0; k < 8; k++)
					if (buf[i * 512 + k * 64] != v) {
						printf("bad %zu %llu\n", i, (unsigned long long)v);
						bad = 1;
						break;
					}
			}
			for (size_t i = 0; i < (1 << 20) / 8 && !bad; i++)
				if (quiet[i] != (extra && i >= (1 << 16) ? 0 : i * 7 + 1)) {
					printf("bad quiet %zu\n", i);
					bad = 1;
				}
			for (size_t i = 0; extra && i < (1 << 20) / 8 && !bad; i++)
				if (extra[i] != i * 13 + 5) {
					printf("bad extra %zu\n", i);
					bad = 1;
				}
			if (!bad) printf("ok %llu\n", (unsigned long long)c);
			fflush(stdout);
		}
	}
}
