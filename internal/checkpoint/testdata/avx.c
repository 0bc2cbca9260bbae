/* Keeps a pattern in ymm7 and sleeps with raw system calls (no libc call
 * may clobber it; built with -ffixed-xmm7); after each sleep writes
 * "i ok" or "i BAD" to argv[1]. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
static long sys3(long nr, long a, long b, long c) {
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
	return ret;
}
int main(int argc, char **argv) {
	int fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
	unsigned char pat[32], got[32];
	for (int i = 0; i < 32; i++) pat[i] = (unsigned char)(i * 7 + 1);
	__asm__ volatile("vmovdqu %0, %%ymm7" : : "m"(pat));
	char line[32];
	for (long i = 0;; i++) {
		struct timespec ts = {0, 10 * 1000 * 1000};
		while (sys3(35, (long)&ts, (long)&ts, 0) == -4) /* nanosleep, EINTR */
			;
		__asm__ volatile("vmovdqu %%ymm7, %0" : "=m"(got));
		int ok = 1;
		for (int k = 0; k < 32; k++) ok &= got[k] == pat[k];
		/* Format by hand: no libc call between the check and the next sleep. */
		int n = 0;
		char d[24];
		long v = i;
		do d[n++] = '0' + v % 10; while ((v /= 10) > 0);
		int m = 0;
		while (n > 0) line[m++] = d[--n];
		const char *s = ok ? " ok\n" : " BAD\n";
		for (; *s; s++) line[m++] = *s;
		sys3(1, fd, (long)line, m);
	}
}
