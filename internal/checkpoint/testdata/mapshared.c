/* Maps argv[1], 64 pages, MAP_SHARED read-write (and closes the file),
 * and for 600 steps, every NAP_MS ms, reads a word of one page and writes a
 * word derived from it into another, so that steps read what earlier
 * steps wrote through the mapping. Then msync, munmap, and the file is
 * read back with read() into a hash. Prints each step, then the hash. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#ifndef NAP_MS
#define NAP_MS 2 /* the migration suite (internal/itest) builds with 5 */
#endif
#define PAGES 64
#define WORDS (4096 / 8)
static void nap(void) {
	struct timespec ts = {0, NAP_MS * 1000 * 1000};
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}
int main(int argc, char **argv) {
	int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, PAGES * 4096) < 0) return 1;
	unsigned long *m = mmap(0, PAGES * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) return 2;
	close(fd);
	for (int i = 0; i < 600; i++) {
		int p = i % PAGES, q = (i * 7 + 1) % PAGES;
		unsigned long v = m[p * WORDS + 1 + i % 8] ^ m[0];
		m[q * WORDS + 1 + i % 8] = v * 31 + (unsigned long)i + 1;
		m[0] = m[0] * 7 + v + 1; /* a chain through the mapping */
		printf("%d\n", i);
		fflush(stdout);
		nap();
	}
	if (msync(m, PAGES * 4096, MS_SYNC) < 0 || munmap(m, PAGES * 4096) < 0) return 3;
	fd = open(argv[1], O_RDONLY);
	unsigned long h = 1469598103934665603UL, w;
	while (read(fd, &w, sizeof w) == sizeof w)
		h = (h ^ w) * 1099511628211UL;
	printf("done %016lx\n", h);
	return 0;
}
