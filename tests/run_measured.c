/* Runs a command and reports its wall time and peak RSS, for the
 * "fails fast" CLI tests (no dependency on /usr/bin/time).
 *
 *   run_measured MAX_SECONDS MAX_RSS_MB COMMAND ARGS...
 *
 * Prints "run_measured: wall X s, max RSS Y MB" on stderr and exits with the
 * command's status (128 + signal if it was killed), or 125 when it took
 * longer or used more memory than allowed. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: run_measured MAX_SECONDS MAX_RSS_MB COMMAND ARGS...\n");
        return 2;
    }
    double max_s = atof(argv[1]), max_mb = atof(argv[2]);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 2;
    }
    if (pid == 0) {
        execvp(argv[3], argv + 3);
        perror(argv[3]);
        _exit(127);
    }
    int st = 0;
    struct rusage ru;
    if (wait4(pid, &st, 0, &ru) < 0) {
        perror("wait4");
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double wall = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    double mb = (double)ru.ru_maxrss / 1024.0; /* Linux: kilobytes */
    fprintf(stderr, "run_measured: wall %.3f s, max RSS %.1f MB\n", wall, mb);
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (wall > max_s || mb > max_mb) {
        fprintf(stderr, "run_measured: over the limit of %.1f s / %.0f MB\n", max_s, max_mb);
        return 125;
    }
    return rc;
}
