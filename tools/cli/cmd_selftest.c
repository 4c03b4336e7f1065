/* `sdvk selftest`: runs the op conformance suite on a backend (Vulkan by
 * default, or the SIMD CPU backend) against the plain-C reference, prints
 * the pass/fail table and exits 1 when anything fails. Useful on a new
 * machine or driver before trusting its images. */
#include <string.h>

#include "cli.h"

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
    sdvk_options_from_env(&opt);
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
    opt.validation |= validation;
    cli_engine_check(&opt);
    int n_fail = 0;
    sdvk_status s = sdvk_selftest(&opt, tol_given ? tol_scale : 0.0, stdout, &n_fail);
    if (n_fail > 0) {
        printf("selftest: %d FAILED\n", n_fail);
        return CLI_FAIL;
    }
    if (s != SDVK_OK)
        return cli_status_error(CLI_FAIL, s, "selftest");
    printf("selftest: all passed\n");
    return CLI_OK;

}
