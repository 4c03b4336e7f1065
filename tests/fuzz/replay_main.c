/* Corpus replay: a plain main() for the libFuzzer targets, so every seed
 * and every past crash runs under any compiler (gcc, no libFuzzer) in ctest.
 *
 *   fuzz_replay_X PATH...     each PATH is a file or a folder of files
 *
 * Runs LLVMFuzzerInitialize (when the target has one) once, then
 * LLVMFuzzerTestOneInput on each file's bytes, in name order. A crash or a
 * sanitizer report fails the test by itself; the target may also return
 * non-zero-free: its own checks abort through fuzz_fail (fuzz_common.h). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int run_file(const char *path, int *n_run, double *slowest, char *slowest_name,
                    size_t name_cap) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (sz < 0) {
        fclose(f);
        return 1;
    }
    /* An exact-size heap copy: ASan then sees any read past the input. */
    uint8_t *buf = malloc(sz ? (size_t)sz : 1);
    if (!buf || fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        free(buf);
        fclose(f);
        return 1;
    }
    fclose(f);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    LLVMFuzzerTestOneInput(buf, (size_t)sz);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double dt = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    if (dt > *slowest) {
        *slowest = dt;
        snprintf(slowest_name, name_cap, "%s", path);
    }
    free(buf);
    (*n_run)++;
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    int n_run = 0, bad = 0;
    double slowest = 0;
    char slowest_name[1024] = "";
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0) {
            fprintf(stderr, "replay: %s does not exist\n", argv[i]);
            bad = 1;
            continue;
        }
        if (!S_ISDIR(sb.st_mode)) {
            bad |= run_file(argv[i], &n_run, &slowest, slowest_name, sizeof slowest_name);
            continue;
        }
        DIR *d = opendir(argv[i]);
        if (!d) {
            bad = 1;
            continue;
        }
        char **names = NULL;
        size_t n = 0, cap = 0;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue; /* ".", "..", and hidden notes such as .gitkeep */
            if (n == cap) {
                cap = cap ? 2 * cap : 64;
                names = realloc(names, cap * sizeof *names);
            }
            size_t l = strlen(argv[i]) + strlen(e->d_name) + 2;
            names[n] = malloc(l);
            snprintf(names[n], l, "%s/%s", argv[i], e->d_name);
            n++;
        }
        closedir(d);
        if (n)
            qsort(names, n, sizeof *names, cmp_str);
        for (size_t k = 0; k < n; k++) {
            if (stat(names[k], &sb) == 0 && S_ISREG(sb.st_mode))
                bad |= run_file(names[k], &n_run, &slowest, slowest_name, sizeof slowest_name);
            free(names[k]);
        }
        free(names);
    }
    printf("replay: %d inputs, slowest %.3f s (%s)\n", n_run, slowest, slowest_name);
    if (n_run == 0) {
        fprintf(stderr, "replay: no inputs found\n");
        return 1;
    }
    return bad;
}
