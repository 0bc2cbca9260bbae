/* Writes a line to argv[1] each time pause() returns (after a SIGUSR1). */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
static void on_usr1(int sig) { (void)sig; }
int main(int argc, char **argv) {
	int fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
	signal(SIGUSR1, on_usr1);
	for (long i = 0;; i++) {
		char b[32];
		int n = snprintf(b, sizeof b, "%ld\n", i);
		if (write(fd, b, n) != n) return 2;
		pause();
	}
}
