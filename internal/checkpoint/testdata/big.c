/* Touches argv[1] MiB of memory, says "ready" on stdout, sleeps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
	size_t n = (size_t)atoi(argv[1]) << 20;
	char *p = malloc(n);
	if (!p) return 1;
	for (size_t i = 0; i < n; i += 4096) p[i] = (char)(i >> 12) | 1;
	printf("ready\n");
	fflush(stdout);
	for (;;) pause();
}
