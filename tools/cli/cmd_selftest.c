/* `sdvk selftest`: runs the op conformance suite on a backend (Vulkan by
 * default, or the SIMD CPU backend) against the plain-C reference, prints
 * the pass/fail table and exits 1 when anything fails. Useful on a new
 * machine or driver before trusting its images. */
#include <string.h>

#include "backend/backend.h"
#include "cli.h"

#if defined(__has_include)
#if __has_include("backend/conformance.h")
#include "backend/conformance.h"
#define HAVE_CONFORMANCE 1
#endif
#endif

static void usage(FILE *f) {
    fputs("Usage: sdvk selftest [--backend auto|vulkan|cpu] [--device N] [--precision P]\n"
          "                     [--threads N] [--tol-scale X] [--validation] [-v]\n"
          "Runs every op on the chosen backend (default auto: Vulkan if usable, else the SIMD CPU\n"
          "backend) and on the plain-C reference with the same random inputs, and prints a table of\n"
          "relative errors against each op's tolerance. --tol-scale multiplies the tolerances\n"
          "(default 1, or 1000 for a backend computing in f16/bf16); --validation turns on the\n"
          "Khronos validation layer (Vulkan).\n"
          "Exit status: 0 all passed, 1 a failure, 2 bad command line.\n",
          f);
}

int cli_cmd_selftest(int argc, char **argv) {
    sdvk_options opt;
    sdvk_options_default(&opt);
    double tol_scale = 1.0;
    int validation = 0, tol_given = 0, rc;
    cli_args a;
    const char *v = NULL;
    cli_args_init(&a, argc, argv, 1);
    for (;;) {
        int r = cli_args_next(&a);
        if (r == 0)
            break;
        if (r < 0)
            return cli_usage_error("selftest: unexpected argument '%s'", a.opt);
        if (cli_is(&a, "--vocab", NULL)) {
            return cli_usage_error("selftest: unknown option '%s' (see sdvk selftest --help)", a.opt);
        } else if (cli_engine_option(&a, &opt, &rc)) {
            if (rc)
                return rc;
        } else if (cli_is(&a, "-h", "--help")) {
            usage(stdout);
            return CLI_OK;
        } else if (cli_is(&a, "--tol-scale", NULL)) {
            if ((rc = cli_value(&a, &v)) || (rc = cli_parse_float(a.opt, v, 1e-3, 1e6, &tol_scale)))
                return rc;
            tol_given = 1;
        } else if (cli_is(&a, "--validation", NULL)) {
            if ((rc = cli_no_value(&a)))
                return rc;
            validation = 1;
        } else {
            return cli_usage_error("selftest: unknown option '%s' (see sdvk selftest --help)", a.opt);
        }
    }
#ifndef HAVE_CONFORMANCE
    (void)tol_scale;
    (void)validation;
    (void)tol_given;
    fprintf(stderr, "sdvk: error: selftest: this build has no conformance suite\n");
    return CLI_FAIL;
#else
    sd_backend *test = NULL, *ref = NULL;
    sdvk_status s;
    if (opt.backend == SDVK_BACKEND_VULKAN) {
        sd_vulkan_opts vo;
        memset(&vo, 0, sizeof vo);
        vo.device_index = opt.device_index;
        vo.precision = opt.precision;
        vo.validation = validation;
        vo.verbose = opt.verbose;
        s = sd_backend_vulkan_create(&vo, &test);
    } else if (opt.backend == SDVK_BACKEND_CPU) {
        s = sd_backend_cpu_create(opt.n_threads, NULL, &test);
    } else {
        s = sd_backend_create(SDVK_BACKEND_AUTO, &opt, &test);
    }
    if (s != SDVK_OK)
        return cli_status_error(CLI_FAIL, s, "selftest: creating the backend under test");
    s = sd_backend_cpu_create(opt.n_threads, "ref", &ref);
    if (s != SDVK_OK) {
        sd_backend_destroy(test);
        return cli_status_error(CLI_FAIL, s, "selftest: creating the reference backend");
    }
    /* 16-bit storage loses ~3 decimal digits against the fp32 reference;
     * the suite's base tolerances are for fp32 (see conformance.h). */
    if (!tol_given && (strstr(test->name, "f16") || strstr(test->name, "bf16")))
        tol_scale = 1000.0;
    printf("selftest: %s against %s (tolerance scale %g)\n", test->name, ref->name, tol_scale);
    fflush(stdout);
    int n_fail = 0;
    s = sd_conformance_run(test, ref, tol_scale, stdout, &n_fail);
    sd_backend_destroy(test);
    sd_backend_destroy(ref);
    if (n_fail > 0) {
        printf("selftest: %d FAILED\n", n_fail);
        return CLI_FAIL;
    }
    if (s != SDVK_OK)
        return cli_status_error(CLI_FAIL, s, "selftest");
    printf("selftest: all passed\n");
    return CLI_OK;
#endif
}
