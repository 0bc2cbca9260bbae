/* Restore stub for tests: Restore stops it at exec, so this never runs
 * when used by Restore; run alone, it waits to be traced. */
#include <signal.h>
#include <sys/ptrace.h>
#include <unistd.h>
int main(void) { ptrace(PTRACE_TRACEME, 0, 0, 0); raise(SIGSTOP); for (;;) pause(); }
