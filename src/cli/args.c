/* Option parsing shared by the administration commands; see args.h. */
#include "cli/args.h"

#include <stdio.h>

int mg_cli_parse(int argc, char **argv, const struct mg_cli_opt *opts, size_t n_opts, void *out,
                 const char **pos, size_t max_pos, size_t *n_pos)
{
    *n_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const struct mg_cli_opt *o = NULL;
        for (size_t k = 0; k < n_opts && o == NULL; k++)
            if (strcmp(a, opts[k].flag) == 0)
                o = &opts[k];
        if (o && o->is_switch) {
            *(bool *)((char *)out + o->off) = true;
        } else if (o) {
            if (i + 1 >= argc) {
                fprintf(stderr, "mcpgate: %s needs a value\n", a);
                return -1;
            }
            *(const char **)((char *)out + o->off) = argv[++i];
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            return -1;
        } else if (a[0] == '-') {
            fprintf(stderr, "mcpgate: unknown option '%s'\n", a);
            return -1;
        } else if (*n_pos < max_pos) {
            pos[(*n_pos)++] = a;
        } else {
            fprintf(stderr, "mcpgate: unexpected argument '%s'\n", a);
            return -1;
        }
    }
    return 0;
}
