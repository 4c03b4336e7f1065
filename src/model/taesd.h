/* TAESD: madebyollin's tiny autoencoder for SD latents (diffusers'
 * AutoencoderTiny), for a fast approximate decode and live previews.
 *
 * Weights come in their own tensor table (sd_st_open on the file), in
 * either layout:
 *  - diffusers (AutoencoderTiny's diffusion_pytorch_model.safetensors, what
 *    the madebyollin/taesd model repository holds): decoder.layers.N.* and
 *    encoder.layers.N.*;
 *  - madebyollin's own taesd_decoder / taesd_encoder files: N.* (the
 *    decoder's index 0 is its parameterless Clamp, so N is one more than
 *    diffusers' index there).
 * The layer sequence is read from the keys: a conv is N.weight (N.bias
 * optional), a block is N.conv.{0,2,4}.* (N.skip.weight when it changes
 * channels); a layer without parameters is the decoder's ReLU right after
 * its first conv, otherwise a 2x nearest upsample. Encoder convs between the
 * first and the last have stride 2. So AutoencoderTiny configurations other
 * than the default (64 channels, blocks (1,3,3,3) / (3,3,3,1)) load too.
 *
 * Graphs:
 *   decode: z [B, h, w, 4], the UNet's latents (what the SD VAE decodes
 *           before its 1/0.18215 scaling; AutoencoderTiny's scaling factor
 *           is 1) -> image [B, 8h, 8w, 3] in about [-1, 1], like
 *           sd_vae_decode_build: x = tanh(z / 3) * 3, the layers, 2x - 1
 *   encode: image [B, H, W, 3] in [-1, 1] (H, W multiples of 8) -> latents
 *           [B, H/8, W/8, 4] in the UNet's scale: (x + 1) / 2, the layers */
#ifndef SD_TAESD_H
#define SD_TAESD_H

#include "../core/graph.h"
#include "../io/safetensors.h"

typedef struct sd_taesd_info {
    int has_decoder, has_encoder;
    int z_ch;   /* latent channels (4) */
    int factor; /* spatial factor of the decoder (8) */
} sd_taesd_info;

/* What the table holds; fails with a message naming the file when it holds
 * neither a TAESD decoder nor an encoder. */
sdvk_status sd_taesd_inspect(const sd_safetensors *st, sd_taesd_info *out);
/* Graph builders (see above): return the output tensor id, or -1 with the
 * error recorded in g (message names the file and tensor). */
int sd_taesd_decode_build(sd_graph *g, const sd_safetensors *st, int z);
int sd_taesd_encode_build(sd_graph *g, const sd_safetensors *st, int img);

#endif
