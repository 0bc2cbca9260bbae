/* AVX math across migrations: keeps a vector in ymm7 (built with
 * -mavx2 -ffixed-xmm7) and, for argv[1] steps, sleeps 10 ms with raw
 * system calls, checks ymm7, updates an accumulator with AVX2 integer
 * arithmetic in registers, and prints "i ok|BAD acc" with raw writes;
 * then "done" and the accumulator. */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>
static long sys3(long nr, long a, long b, long c) {
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
	return ret;
}
static int fmt(char *p, unsigned long v) {
	char d[24];
	int n = 0, m = 0;
	do d[n++] = '0' + v % 10; while ((v /= 10) > 0);
	while (n > 0) p[m++] = d[--n];
	return m;
}
int main(int argc, char **argv) {
	long steps = argc > 1 ? atol(argv[1]) : 300;
	unsigned char pat[32], got[32];
	for (int i = 0; i < 32; i++) pat[i] = (unsigned char)(i * 7 + 1);
	__asm__ volatile("vmovdqu %0, %%ymm7" : : "m"(pat));
	__m256i acc = _mm256_set1_epi32(1), mul = _mm256_set_epi32(3, 5, 7, 11, 13, 17, 19, 23);
	char line[64];
	for (long i = 0; i < steps; i++) {
		struct timespec { long s, ns; } ts = {0, 10 * 1000 * 1000};
		while (sys3(35, (long)&ts, (long)&ts, 0) == -4)
			;
		__asm__ volatile("vmovdqu %%ymm7, %0" : "=m"(got));
		int ok = memcmp(got, pat, 32) == 0;
		acc = _mm256_add_epi32(_mm256_mullo_epi32(acc, mul), _mm256_set1_epi32((int)i));
		unsigned int v[8];
		_mm256_storeu_si256((__m256i *)v, acc);
		int m = fmt(line, i);
		const char *s = ok ? " ok " : " BAD ";
		for (; *s; s++) line[m++] = *s;
		m += fmt(line + m, v[0] ^ v[7]);
		line[m++] = '\n';
		sys3(1, 1, (long)line, m);
	}
	sys3(1, 1, (long)"done\n", 5);
	return 0;
}
