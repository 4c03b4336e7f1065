/* Backend-vs-backend op conformance: every op in ops.def over several
 * shapes (odd sizes, optional bias/residual, F16/BF16 weights, broadcasts,
 * causal and cross attention, multi-step runs), each built as a 1-node or
 * small graph with fresh random inputs (a fixed seed per case), run on both
 * backends through the backend.h interface only, and compared by relative
 * L2 error ||test - ref|| / ||ref||.
 *
 * Tolerance per case: base x tol_scale, base = 1e-5 for almost every case
 * (fp32 backends pass tol_scale 1, fp16-storage backends e.g. 1000). A few
 * cases whose fp32 evaluation is inherently less exact have a larger base
 * (timestep_embed: 2e-4, because t·f_k for t ~ 1000 loses digits in fp32).
 * Matmul/conv with 8-bit weights have 1e-2 on every backend (x86 CPU
 * kernels quantise activations too).
 *
 * Environment: SDVK_CONFORMANCE_OPS="matmul,conv2d" restricts the run to
 * those ops (op names from ops.def). */
#ifndef SD_CONFORMANCE_H
#define SD_CONFORMANCE_H

#include <stdio.h>

#include "backend.h"

/* Runs all cases, printing "op  shape  rel_err  tol  PASS/FAIL" rows to
 * report (may be NULL). *n_fail (may be NULL) gets the number of failed
 * cases; a case also fails when the test backend cannot build, prepare or
 * run it (the row then shows the error). Returns SDVK_OK when every case
 * passed, SDVK_ERR_BACKEND when some failed (message: "k of n cases
 * failed"), or another status when the harness itself could not run. */
sdvk_status sd_conformance_run(sd_backend *test, sd_backend *ref, double tol_scale, FILE *report,
                               int *n_fail);

/* Number of cases sd_conformance_run would run (after the env filter). */
int sd_conformance_case_count(void);
/* How many of those have an absolute tolerance (8-bit weights: 1e-2). */
int sd_conformance_case_count_abs_tol(void);

#endif
