/* Holds a socket open and sleeps. */
#include <sys/socket.h>
#include <unistd.h>
int main(void) { if (socket(AF_UNIX, SOCK_STREAM, 0) < 0) return 1; for (;;) pause(); }
