/* `sdvk`: generate images (the default command), or run a subcommand:
 * tokenize, stage, selftest, convert, serve. */
#include <string.h>

#include "cli.h"

int main(int argc, char **argv) {
    if (argc >= 2) {
        const char *cmd = argv[1];
        if (strcmp(cmd, "tokenize") == 0)
            return sdvk_cmd_tokenize(argc - 1, argv + 1);
        if (strcmp(cmd, "stage") == 0)
            return cli_cmd_stage(argc - 1, argv + 1);
        if (strcmp(cmd, "selftest") == 0)
            return cli_cmd_selftest(argc - 1, argv + 1);
        if (strcmp(cmd, "convert") == 0)
            return cli_cmd_convert(argc - 1, argv + 1);
        if (strcmp(cmd, "serve") == 0)
            return sv_cmd_serve(argc - 1, argv + 1);
    }
    return cli_cmd_generate(argc, argv);
}
