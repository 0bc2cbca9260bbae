/* inotify across a restore: watches argv[2], argv[3] and argv[4] (wd 1,
 * 2, 3), removes the second (its IN_IGNORED is read), then writes "WD
 * NAME" to argv[1] for each event it reads. A restore must give the
 * watches their numbers back, with number 2 free, and no event of its
 * own making. With argv[5] = "idle" it reads nothing. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>
int main(int argc, char **argv) {
	if (argc < 5) return 1;
	int out = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
	int in = inotify_init1(IN_CLOEXEC);
	if (out < 0 || in < 0) return 1;
	for (int i = 2; i <= 4; i++)
		if (inotify_add_watch(in, argv[i], IN_CREATE) != i - 1) return 2;
	if (inotify_rm_watch(in, 2)) return 3;
	if (argc > 5 && strcmp(argv[5], "idle") == 0)
		for (;;) pause(); /* reads nothing */
	char buf[4096] __attribute__((aligned(8)));
	for (;;) {
		ssize_t n = read(in, buf, sizeof buf);
		if (n <= 0) continue;
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *e = (struct inotify_event *)p;
			if (e->wd != 2 || !(e->mask & IN_IGNORED)) dprintf(out, "%d %s\n", e->wd, e->len ? e->name : "-");
			p += sizeof *e + e->len;
		}
	}
}
