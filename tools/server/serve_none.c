/* `sdvk serve` in a build without libmicrohttpd (see tools/server/server.cmake). */
#include <stdio.h>

int sv_cmd_serve(int argc, char **argv);

int sv_cmd_serve(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "sdvk: error: this sdvk was built without the HTTP server: install "
                    "libmicrohttpd (Debian: libmicrohttpd-dev, or bash tools/install_deps.sh) "
                    "and configure again\n");
    return 2;
}
