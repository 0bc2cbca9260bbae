/* Two threads that sleep. */
#include <pthread.h>
#include <unistd.h>
static void *run(void *a) { for (;;) pause(); return a; }
int main(void) { pthread_t t; pthread_create(&t, 0, run, 0); for (;;) pause(); }
