/* Writes 512 16-byte records into argv[1] at scattered places, every
 * 2 ms: lseek to record (i*337)%512 and write it; every third step a
 * second record right after, without seeking (the offset carries on);
 * then lseek elsewhere and read a record back into a running hash (what
 * is read depends on the writes before). Prints each step to stdout,
 * then the hash. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#ifndef NAP_MS
#define NAP_MS 2 /* the migration suite (internal/itest) builds with 5 */
#endif
static void nap(void) {
	struct timespec ts = {0, NAP_MS * 1000 * 1000};
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}
int main(int argc, char **argv) {
	int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) return 1;
	unsigned long h = 1469598103934665603UL;
	for (int i = 0; i < 512; i++) {
		char rec[17];
		int slot = (i * 337) % 512;
		if (lseek(fd, slot * 16, SEEK_SET) < 0) return 2;
		snprintf(rec, sizeof rec, "%07d:%07d\n", i, slot);
		if (write(fd, rec, 16) != 16) return 3;
		if (i % 3 == 0) {
			snprintf(rec, sizeof rec, "%07d+%07d\n", i, slot + 1);
			if (write(fd, rec, 16) != 16) return 4;
		}
		if (lseek(fd, ((i * 131) % 512) * 16, SEEK_SET) < 0) return 5;
		ssize_t n = read(fd, rec, 16);
		h = (h ^ (unsigned long)n) * 1099511628211UL;
		for (ssize_t k = 0; k < n; k++)
			h = (h ^ (unsigned char)rec[k]) * 1099511628211UL;
		printf("%d\n", i);
		fflush(stdout);
		nap();
	}
	printf("done %016lx\n", h);
	return 0;
}
