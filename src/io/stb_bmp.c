/* stb_image restricted to BMP (STBI_ONLY_BMP: none of its PNG, JPEG, PNM,
 * PSD, HDR, TGA, GIF or PIC code is compiled). In a file of its own because
 * stb declares the functions of the formats left out, which warns at the end
 * of the translation unit. Only reached through image_decode.c's BMP header
 * checks, and fuzzed by tests/fuzz/fuzz_image.c. */
/* stb's assert()s stay on in every build type: an internal inconsistency
 * stops the process instead of going on with corrupt state. The fuzz
 * campaign (built with assertions) found none reachable. */
#undef NDEBUG
#include <assert.h>

#include "stb_bmp.h"

#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_BMP
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_FAILURE_USERMSG
#define STBI_MAX_DIMENSIONS 16384 /* SD_IMAGE_MAX_SIDE */
#include <stb_image.h>
/* stb_image 2.27 declares this but never defines it. */
static void stbi_set_unpremultiply_on_load_thread(int flag) { (void)flag; }

int sd_stb_bmp_info(const uint8_t *buf, int n, int *w, int *h, const char **why) {
    int c = 0;
    if (stbi_info_from_memory(buf, n, w, h, &c))
        return 1;
    *why = stbi_failure_reason();
    return 0;
}

uint8_t *sd_stb_bmp_load(const uint8_t *buf, int n, int *w, int *h, const char **why) {
    int c = 0;
    uint8_t *px = stbi_load_from_memory(buf, n, w, h, &c, 3);
    if (!px)
        *why = stbi_failure_reason();
    return px;
}
