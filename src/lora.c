#include "lora.h"

#include <stdlib.h>

void sd_lora_state_free(struct sd_lora_state *st) { free(st); }
