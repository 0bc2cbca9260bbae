/* Takes one lock or lease on the file argv[2] and holds it:
 * argv[1] is posix (a write lock, fcntl F_SETLK, as lockf), posix-read,
 * flock (LOCK_EX), flock-shared (LOCK_SH), ofd (F_OFD_SETLK write lock) or
 * lease (a read lease: the file must be the process's, opened O_RDONLY).
 * Prints "locked" once it holds it (or "error N" with errno), then pauses. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
int main(int argc, char **argv) {
	if (argc < 3) return 2;
	const char *kind = argv[1];
	int ro = !strcmp(kind, "lease") || !strcmp(kind, "posix-read") || !strcmp(kind, "flock-shared");
	int fd = open(argv[2], ro ? O_RDONLY : O_RDWR | O_CREAT, 0644);
	int r = -1;
	if (fd < 0) goto out;
	if (!strcmp(kind, "posix") || !strcmp(kind, "posix-read")) {
		struct flock l = {.l_type = ro ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET};
		r = fcntl(fd, F_SETLK, &l);
	} else if (!strcmp(kind, "flock")) {
		r = flock(fd, LOCK_EX | LOCK_NB);
	} else if (!strcmp(kind, "flock-shared")) {
		r = flock(fd, LOCK_SH | LOCK_NB);
	} else if (!strcmp(kind, "ofd")) {
		struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 100, .l_len = 10};
		r = fcntl(fd, F_OFD_SETLK, &l);
	} else if (!strcmp(kind, "lease")) {
		r = fcntl(fd, F_SETLEASE, F_RDLCK);
	}
out:
	if (r < 0) printf("error %d\n", errno);
	else printf("locked\n");
	fflush(stdout);
	for (;;) pause();
}
