/* Helper for tools/clip_tokenize.py --crosscheck: reads a JSON list of
 * strings and prints, as JSON, the ids of each (mode "tokens") or its A1111
 * spans [[text, weight], ...] (mode "spans").
 * usage: test_tokenizer_dump tokens|spans VOCAB FILE.json */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "tokenizer/tokenizer.h"

int main(int argc, char **argv)
{
    if (argc != 4 || (strcmp(argv[1], "tokens") && strcmp(argv[1], "spans"))) {
        fprintf(stderr, "usage: %s tokens|spans VOCAB FILE.json\n", argv[0]);
        return 2;
    }
    int spans = strcmp(argv[1], "spans") == 0;
    json_error_t je;
    json_t *in = json_load_file(argv[3], 0, &je);
    if (!json_is_array(in)) {
        fprintf(stderr, "%s: %s\n", argv[3], je.text);
        return 1;
    }
    sd_tokenizer *t = NULL;
    if (!spans && sd_tokenizer_load(argv[2], &t) != SDVK_OK) {
        fprintf(stderr, "%s\n", sdvk_last_error());
        return 1;
    }
    json_t *out = json_array();
    size_t k;
    json_t *e;
    json_array_foreach(in, k, e)
    {
        const char *s = json_string_value(e);
        json_t *row = json_array();
        if (!s) {
            fprintf(stderr, "item %zu is not a string\n", k);
            return 1;
        }
        if (spans) {
            sd_prompt_span *sp;
            int n;
            if (sd_prompt_parse(s, 0, &sp, &n) != SDVK_OK) {
                fprintf(stderr, "%s\n", sdvk_last_error());
                return 1;
            }
            for (int i = 0; i < n; i++) {
                json_t *pair = json_array();
                json_array_append_new(pair, json_string(sp[i].text));
                json_array_append_new(pair, json_real(sp[i].weight));
                json_array_append_new(row, pair);
            }
            sd_prompt_spans_free(sp, n);
        } else {
            int32_t *ids;
            int n;
            if (sd_tokenize(t, s, &ids, &n) != SDVK_OK) {
                fprintf(stderr, "%s\n", sdvk_last_error());
                return 1;
            }
            for (int i = 0; i < n; i++)
                json_array_append_new(row, json_integer(ids[i]));
            free(ids);
        }
        json_array_append_new(out, row);
    }
    char *txt = json_dumps(out, JSON_COMPACT | JSON_REAL_PRECISION(17));
    if (!txt)
        return 1;
    puts(txt);
    free(txt);
    json_decref(out);
    json_decref(in);
    sd_tokenizer_free(t);
    return 0;
}
