/* `sdvk convert`: any model form sdvk reads, written as one single-file
 * .safetensors (sdvk_convert), with a separate VAE and LoRAs merged and the
 * floating-point tensors converted if asked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define MAX_LORAS 16

static void usage(FILE *f) {
    fputs("Usage: sdvk convert -m MODEL -o OUT.safetensors [options]\n"
          "Writes MODEL (.safetensors, .ckpt or a diffusers folder) as one single-file .safetensors\n"
          "in the original SD v1.x key layout (what sdvk, A1111 and ComfyUI load). It streams: memory\n"
          "stays near the largest weight a LoRA changes, not the model's size.\n\n"
          "Options:\n"
          "  -m, --model PATH          the model to convert\n"
          "  -o, --output PATH         the .safetensors to write (made under a temporary name and\n"
          "                            renamed when complete; may be MODEL itself)\n"
          "  --vae PATH                a separate VAE replacing the model's (.safetensors, .ckpt or a\n"
          "                            diffusers vae/ folder)\n"
          "  --lora FILE[:W[:UNET_W]]  merge a LoRA into the weights (repeatable): W for the text\n"
          "                            encoder and the UNet (1), or W for the text encoder and UNET_W\n"
          "  --type keep|f16|f32|bf16|q8  floating-point tensors as they are (keep, the default)\n"
          "                            or converted; q8: matmul/conv weights as int8 with an fp16\n"
          "                            scale per 32 values (what --weights q8 makes at load), the\n"
          "                            rest kept; weights a LoRA changes are merged in float32,\n"
          "                            then stored in this type\n"
          "  -v, --verbose             say what is merged, left out and written\n"
          "  -h, --help\n\n"
          "Left out: tensors that are not UNet, VAE or text encoder weights (EMA copies, optimizer\n"
          "state, schedule buffers). Kept: the metadata (modelspec.*, ...), plus the head counts\n"
          "sdvk needs (sdvk.unet.num_heads, sdvk.clip.num_heads) and sdvk.converted_from,\n"
          "sdvk.vae, sdvk.loras_merged.\n\n"
          "Exit status: 0 success, 1 failure while running, 2 bad command line or input file.\n",
          f);
}

typedef struct prog {
    int tty, last_pct;
} prog;

static int on_progress(void *user, int done, int total) {
    prog *p = user;
    int pct = total ? (int)(100.0 * done / total) : 100;
    if (p->tty && pct != p->last_pct) {
        fprintf(stderr, "\rconverting: %d/%d tensors (%d%%)", done, total, pct);
        if (done == total)
            fputc('\n', stderr);
        fflush(stderr);
    }
    p->last_pct = pct;
    return cli_interrupted();
}

static void on_log(void *user, sdvk_log_level level, const char *msg) {
    (void)user;
    fprintf(stderr, "sdvk: %s%s\n", level == SDVK_LOG_ERROR ? "error: " : "", msg);
}

int cli_cmd_convert(int argc, char **argv) {
    const char *model = NULL, *out = NULL, *vae = NULL, *v = NULL;
    static char paths[MAX_LORAS][4096];
    sdvk_lora loras[MAX_LORAS];
    int n_loras = 0, verbose = 0, rc;
    sdvk_convert_type type = SDVK_CONVERT_KEEP;
    cli_args a;
    cli_args_init(&a, argc, argv, 1);
    for (;;) {
        int r = cli_args_next(&a);
        if (r == 0)
            break;
        if (r < 0)
            return cli_usage_error("convert: unexpected argument '%s' (see sdvk convert --help)", a.opt);
        if (cli_is(&a, "-h", "--help")) {
            usage(stdout);
            return CLI_OK;
        } else if (cli_is(&a, "-m", "--model")) {
            if ((rc = cli_value(&a, &model)))
                return rc;
        } else if (cli_is(&a, "-o", "--output")) {
            if ((rc = cli_value(&a, &out)))
                return rc;
        } else if (cli_is(&a, "--vae", NULL)) {
            if ((rc = cli_value(&a, &vae)) || (rc = cli_check_model_path("--vae", vae)))
                return rc;
        } else if (cli_is(&a, "--lora", NULL)) {
            if ((rc = cli_value(&a, &v)))
                return rc;
            if (n_loras == MAX_LORAS)
                return cli_usage_error("--lora: at most %d", MAX_LORAS);
            if ((rc = cli_parse_lora("--lora", v, paths[n_loras], sizeof paths[0], &loras[n_loras])))
                return rc;
            n_loras++;
        } else if (cli_is(&a, "--type", NULL)) {
            if ((rc = cli_value(&a, &v)))
                return rc;
            static const char *const names[] = {"keep", "f16", "f32", "bf16", "q8"};
            int k = -1;
            for (int i = 0; i < 5; i++)
                if (!strcmp(v, names[i]))
                    k = i;
            if (k < 0)
                return cli_usage_error("--type: unknown type '%s' (use keep, f16, f32, bf16 or q8)", v);
            type = (sdvk_convert_type)k;
        } else if (cli_is(&a, "-v", "--verbose")) {
            if ((rc = cli_no_value(&a)))
                return rc;
            verbose = 1;
        } else {
            return cli_usage_error("convert: unknown option '%s' (see sdvk convert --help)", a.opt);
        }
    }
    if (!model)
        return cli_usage_error("convert: missing -m/--model PATH");
    if (!out)
        return cli_usage_error("convert: missing -o/--output PATH (.safetensors)");
    if ((rc = cli_check_model_path("-m/--model", model)) || (rc = cli_check_output("-o/--output", out)))
        return rc;
    size_t ol = strlen(out);
    if (ol < 12 || strcmp(out + ol - 12, ".safetensors"))
        cli_warn("-o/--output '%s' does not end in .safetensors (it is written as one)", out);

    sdvk_convert_params p;
    sdvk_convert_params_default(&p);
    p.vae_path = vae;
    p.loras = loras;
    p.n_loras = n_loras;
    p.type = type;
    p.verbose = verbose;
    p.log = on_log;
    prog pr = {isatty(fileno(stderr)), -1};
    p.progress = on_progress;
    p.progress_user = &pr;
    cli_install_sigint();
    sdvk_convert_stats st;
    sdvk_status s = sdvk_convert(model, out, &p, &st);
    if (s != SDVK_OK) {
        if (pr.tty && pr.last_pct >= 0)
            fputc('\n', stderr);
        /* a file that is not a usable model or LoRA is bad input (2) */
        int bad_input = s == SDVK_ERR_FORMAT || s == SDVK_ERR_MODEL || s == SDVK_ERR_INVALID_ARG;
        return cli_status_error(bad_input ? CLI_USAGE : CLI_FAIL, s, "convert");
    }
    fprintf(stderr, "sdvk: wrote %s: %d tensors, %.1f MB, in %.1f s\n", out, st.tensors_written,
            (double)st.bytes_written / 1e6, st.seconds);
    if (n_loras)
        fprintf(stderr, "sdvk: %d LoRA(s) merged into %d weights\n", n_loras, st.weights_merged);
    if (st.tensors_skipped && !verbose)
        fprintf(stderr, "sdvk: left out %d tensors that are not UNet, VAE or text encoder weights\n",
                st.tensors_skipped);
    return CLI_OK;
}
