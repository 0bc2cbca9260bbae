/* Shared memory whose file is gone, across a restore: a POSIX semaphore
 * (sem_open then sem_unlink: python's multiprocessing locks), a POSIX
 * shared memory object (shm_open, mmap, shm_unlink) and a memfd, each
 * mapped MAP_SHARED with its descriptor closed, shared with a child that
 * writes to them and ends. The program then writes 0, 1, 2... to
 * argv[1]. At SIGUSR1 it checks the contents and the semaphore's count
 * (2), forks a child that writes one more byte into each mapping, and
 * exits 0 if it sees those bytes (still shared, not private), or 3. With
 * argv[2] = "fd" it keeps the memfd's descriptor open too. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static volatile sig_atomic_t done;
static void on_usr1(int sig) { done = 1; (void)sig; }
static char *shared(int fd, size_t n) {
	if (fd < 0 || ftruncate(fd, n) != 0) return 0;
	char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	return p == MAP_FAILED ? 0 : p;
}
int main(int argc, char **argv) {
	if (argc < 2) return 1;
	char name[64];
	snprintf(name, sizeof name, "/ssi-test-%d", (int)getpid());
	sem_t *sem = sem_open(name, O_CREAT | O_EXCL, 0600, 0);
	if (sem == SEM_FAILED) return 2;
	sem_unlink(name);
	int sfd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
	char *shm = shared(sfd, 2 * 4096);
	shm_unlink(name);
	close(sfd);
	int mfd = memfd_create("ssi-test", MFD_CLOEXEC);
	char *mem = shared(mfd, 3 * 4096);
	if (!shm || !mem) return 2;
	if (!(argc > 2 && strcmp(argv[2], "fd") == 0)) close(mfd);
	pid_t c = fork();
	if (c == 0) {
		strcpy(shm, "shm from the child");
		strcpy(mem + 4096, "memfd from the child");
		sem_post(sem);
		sem_post(sem);
		_exit(0);
	}
	waitpid(c, 0, 0);
	int out = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
	struct sigaction sa = {.sa_handler = on_usr1};
	sigaction(SIGUSR1, &sa, 0);
	for (long n = 0; !done; n++) {
		char b[32];
		int j = snprintf(b, sizeof b, "%ld\n", n);
		if (write(out, b, j) != j) return 4;
		struct timespec ts = {0, 20000000};
		nanosleep(&ts, 0);
	}
	if (strcmp(shm, "shm from the child") != 0 || strcmp(mem + 4096, "memfd from the child") != 0) return 3;
	if (sem_trywait(sem) != 0 || sem_trywait(sem) != 0) return 3;
	if (sem_trywait(sem) == 0 || errno != EAGAIN) return 3;
	c = fork();
	if (c == 0) {
		shm[4096] = 'Q';
		mem[8192] = 'R';
		sem_post(sem);
		_exit(0);
	}
	waitpid(c, 0, 0);
	return shm[4096] == 'Q' && mem[8192] == 'R' && sem_trywait(sem) == 0 ? 0 : 3;
}
