/* Writes crashes/image/limit-jpeg-190-scans.jpg: a valid progressive JPEG
 * of 190 scans (DC, then each AC coefficient of each component alone),
 * over SD_IMAGE_JPEG_MAX_SCANS. Not built by cmake:
 *   gcc tests/fuzz/make_many_scans.c -ljpeg -o /tmp/m && /tmp/m tests/fuzz/crashes/image/limit-jpeg-190-scans.jpg */
#include <stdio.h>
#include <stdlib.h>
#include <jpeglib.h>
int main(int argc, char **argv) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    FILE *f = fopen(argv[1], "wb");
    jpeg_stdio_dest(&c, f);
    c.image_width = 16; c.image_height = 16; c.input_components = 3; c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 90, TRUE);
    static jpeg_scan_info s[1 + 63 * 3];
    int n = 0;
    s[n].comps_in_scan = 3; for (int k = 0; k < 3; k++) s[n].component_index[k] = k;
    s[n].Ss = 0; s[n].Se = 0; s[n].Ah = 0; s[n].Al = 0; n++;
    for (int k = 1; k < 64; k++) for (int ci = 0; ci < 3; ci++) {
        s[n].comps_in_scan = 1; s[n].component_index[0] = ci; s[n].Ss = k; s[n].Se = k; s[n].Ah = 0; s[n].Al = 0; n++;
    }
    c.scan_info = s; c.num_scans = n;
    jpeg_start_compress(&c, TRUE);
    unsigned char row[16 * 3];
    while (c.next_scanline < 16) {
        for (int x = 0; x < 16 * 3; x++) row[x] = (unsigned char)(x * 5 + c.next_scanline * 9);
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    fclose(f);
    printf("%d scans\n", n);
    return 0;
}
