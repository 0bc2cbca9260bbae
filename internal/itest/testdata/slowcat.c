/* Copies argv[1] to stdout in argv[2]-KiB chunks, sleeping argv[3] ms
 * after each: a slow producer, so that a consumer can be migrated while
 * it reads. */
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
	int fd = open(argv[1], O_RDONLY);
	size_t chunk = (size_t)atol(argv[2]) << 10;
	long ms = atol(argv[3]);
	char *b = malloc(chunk);
	if (fd < 0 || !b) return 1;
	for (;;) {
		ssize_t n = read(fd, b, chunk);
		if (n <= 0) return n < 0;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(1, b + off, n - off);
			if (w <= 0) return 2;
			off += w;
		}
		struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
		nanosleep(&ts, 0);
	}
}
