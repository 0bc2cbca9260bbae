/* Kernel objects across a restore: an epoll instance (ep) watching a
 * periodic timerfd, a signalfd (edge-triggered) and a semaphore eventfd
 * (one-shot), itself watched by a second epoll instance (outer) that the
 * main loop waits on. Each timer read writes 0, 1, 2... to argv[1]; every
 * tenth line takes one unit of the eventfd (1 in semaphore mode). The
 * one-shot watch fires once: a second time means it came back enabled.
 * SIGUSR1 (blocked, read through the signalfd) ends the program with 0.
 * With argv[2] = "quiet" the timer fires every 1000 s: nothing changes
 * while the test compares /proc/PID/fdinfo before and after. */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

static int out;
static long count;

static void line(long v) {
	char b[32];
	int n = sizeof b;
	b[--n] = '\n';
	do {
		b[--n] = '0' + v % 10;
		v /= 10;
	} while (v);
	if (write(out, b + n, sizeof b - n) != (ssize_t)(sizeof b - n)) _exit(2);
}

static void fail(const char *why) {
	dprintf(2, "kobjs: %s\n", why);
	_exit(3);
}

int main(int argc, char **argv) {
	int quiet = argc > 2 && strcmp(argv[2], "quiet") == 0;
	out = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
	if (out < 0) return 1;
	int efd = eventfd(0, EFD_NONBLOCK | EFD_SEMAPHORE | EFD_CLOEXEC);
	uint64_t big = (uint64_t)1 << 33;
	if (efd < 0 || write(efd, &big, 8) != 8) fail("eventfd");
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	struct itimerspec its = {{0, 20000000}, {0, 20000000}};
	if (quiet) its = (struct itimerspec){{7, 0}, {1000, 0}};
	if (tfd < 0 || timerfd_settime(tfd, 0, &its, 0)) fail("timerfd");
	sigset_t m;
	sigemptyset(&m);
	sigaddset(&m, SIGUSR1);
	sigprocmask(SIG_BLOCK, &m, 0);
	int sfd = signalfd(-1, &m, SFD_NONBLOCK);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	int outer = epoll_create1(0);
	if (sfd < 0 || ep < 0 || outer < 0) fail("signalfd or epoll");
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x1111222233334444ULL};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev)) fail("watch timerfd");
	ev = (struct epoll_event){.events = EPOLLIN | EPOLLET, .data.u64 = 2};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev)) fail("watch signalfd");
	ev = (struct epoll_event){.events = EPOLLIN | EPOLLONESHOT, .data.u64 = 3};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev)) fail("watch eventfd");
	ev = (struct epoll_event){.events = EPOLLIN, .data.u64 = 9};
	if (epoll_ctl(outer, EPOLL_CTL_ADD, ep, &ev)) fail("watch epoll");
	int oneshots = 0;
	for (;;) {
		struct epoll_event e[4];
		int n = epoll_wait(outer, e, 4, -1);
		if (n < 0) continue;
		if (n != 1 || e[0].data.u64 != 9) fail("outer epoll: bad event");
		n = epoll_wait(ep, e, 4, 0);
		for (int i = 0; i < n; i++) {
			uint64_t v;
			switch (e[i].data.u64) {
			case 0x1111222233334444ULL:
				if (read(tfd, &v, 8) != 8) break;
				line(count);
				if (count++ % 10 == 0) {
					if (read(efd, &v, 8) != 8 || v != 1) fail("eventfd: not a semaphore");
				}
				break;
			case 2: {
				struct signalfd_siginfo si;
				if (read(sfd, &si, sizeof si) != sizeof si || si.ssi_signo != SIGUSR1) fail("signalfd");
				return 0;
			}
			case 3:
				if (++oneshots > 1) fail("one-shot watch fired twice");
				break;
			default:
				fail("unknown event data");
			}
		}
	}
}
