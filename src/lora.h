/* LoRAs applied to a context's resident weights (filled in with the
 * extra-networks work). */
#ifndef SD_LORA_H
#define SD_LORA_H

struct sd_lora_state;
void sd_lora_state_free(struct sd_lora_state *st);

#endif
