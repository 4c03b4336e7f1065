// Shared by every sdvk compute shader. F16=1 selects 16-bit storage of
// tensors (weights and activations); all arithmetic stays fp32.
#if F16
#extension GL_EXT_shader_16bit_storage : require
#define T float16_t
#else
#define T float
#endif
#define LD(x) float(x)
#define ST(x) T(x)

// Tensor binding: 0 is the output, 1..4 the node's inputs. Each binding is a
// sub-range of a larger buffer; the push constants carry the tensor's
// element offset inside it (views need not start on a binding alignment).
#define TENSOR(n, name) layout(std430, binding = n) buffer name##_b { T name[]; };

const float SD_LARGE_NEG = -1e30;

float sd_sigmoid(float x) { return 1.0 / (1.0 + exp(-x)); }

// erf by Abramowitz-Stegun 7.1.26 is only 1.5e-7 absolute; use the
// W. J. Cody-style rational form split at |x| = 0.5 for ~1e-7 relative near 0.
float sd_erf(float x) {
    float ax = abs(x);
    if (ax < 0.5) {
        // Taylor series: good to < 1e-8 for |x| < 0.5
        float x2 = x * x;
        return x * (1.1283791671 + x2 * (-0.3761263890 + x2 * (0.1128379167 +
               x2 * (-0.0268661706 + x2 * (0.0052239776 + x2 * -0.0008548327)))));
    }
    float t = 1.0 / (1.0 + 0.5 * ax);
    // Numerical Recipes erfc (Chebyshev), fractional error < 1.2e-7
    float y = t * exp(-ax * ax - 1.26551223 + t * (1.00002368 + t * (0.37409196 +
              t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 +
              t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
    float r = 1.0 - y;
    return x < 0.0 ? -r : r;
}

float sd_gelu(float x) { return 0.5 * x * (1.0 + sd_erf(x * 0.70710678118654752)); }
