/* Forks a child that it traces; prints the child's pid on stdout. */
#include <signal.h>
#include <stdio.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
	pid_t c = fork();
	if (c == 0) { ptrace(PTRACE_TRACEME, 0, 0, 0); raise(SIGSTOP); for (;;) pause(); }
	int st;
	waitpid(c, &st, 0);
	ptrace(PTRACE_CONT, c, 0, 0);
	printf("%d\n", c);
	fflush(stdout);
	for (;;) pause();
}
