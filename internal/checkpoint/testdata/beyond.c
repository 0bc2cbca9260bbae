/* A private file mapping three pages long over a file of five bytes: the
 * pages past the end of the file read as EIO through /proc/PID/mem (and
 * SIGBUS in the process). The first page is written (copied on write).
 * The program writes 0, 1, 2... to argv[2] every 20 ms; at SIGUSR1 it
 * exits 0 if the page it wrote is as it left it, or 3. */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
static volatile sig_atomic_t done;
static void on_usr1(int sig) { done = 1; (void)sig; }
int main(int argc, char **argv) {
	if (argc < 3) return 1;
	int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, "hello", 5) != 5) return 1;
	char *p = mmap(0, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED) return 2;
	p[0] = 'H';
	p[4095] = 'z';
	int out = open(argv[2], O_WRONLY | O_APPEND | O_CREAT, 0644);
	struct sigaction sa = {.sa_handler = on_usr1};
	sigaction(SIGUSR1, &sa, 0);
	for (long n = 0; !done; n++) {
		char b[32];
		int k = 0;
		long v = n;
		char t[32];
		do t[k++] = '0' + v % 10; while (v /= 10);
		for (int i = 0; i < k; i++) b[i] = t[k - 1 - i];
		b[k++] = '\n';
		if (write(out, b, k) != k) return 4;
		struct timespec ts = {0, 20000000};
		nanosleep(&ts, 0);
	}
	return memcmp(p, "Hello", 5) == 0 && p[4095] == 'z' ? 0 : 3;
}
