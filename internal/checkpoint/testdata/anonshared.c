/* MAP_SHARED anonymous memory across a restore. Three pages are shared
 * with a child that writes to them and ends; the program then writes 0,
 * 1, 2... to argv[1]. At SIGUSR1 it checks the pages hold what was
 * written, forks a child that writes one more byte, and exits 0 if it
 * sees that byte (the memory is still shared, not private), or 3. With
 * argv[2] = "keep" the child lives on (sleeping), sharing the pages. */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static volatile sig_atomic_t done;
static void on_usr1(int sig) { done = 1; (void)sig; }
int main(int argc, char **argv) {
	if (argc < 2) return 1;
	char *p = mmap(0, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) return 2;
	memset(p + 4096, 'x', 100);
	pid_t c = fork();
	if (c == 0) {
		strcpy(p, "from the child");
		if (argc > 2 && strcmp(argv[2], "keep") == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL); /* ends with its parent */
			pause();
		}
		_exit(0);
	}
	if (!(argc > 2 && strcmp(argv[2], "keep") == 0)) waitpid(c, 0, 0);
	int out = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
	struct sigaction sa = {.sa_handler = on_usr1};
	sigaction(SIGUSR1, &sa, 0);
	for (long n = 0; !done; n++) {
		char b[32], t[32];
		int k = 0, j = 0;
		long v = n;
		do t[k++] = '0' + v % 10; while (v /= 10);
		while (k) b[j++] = t[--k];
		b[j++] = '\n';
		if (write(out, b, j) != j) return 4;
		struct timespec ts = {0, 20000000};
		nanosleep(&ts, 0);
	}
	if (strcmp(p, "from the child") != 0 || p[4096] != 'x' || p[4195] != 'x' || p[4196] != 0) return 3;
	c = fork();
	if (c == 0) {
		p[8192] = 'Q';
		_exit(0);
	}
	waitpid(c, 0, 0);
	return p[8192] == 'Q' ? 0 : 3;
}
