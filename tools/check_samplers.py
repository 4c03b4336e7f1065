#!/usr/bin/env python3
"""Every sdvk sampler against the implementations other tools are built on.

    tools/.venv/bin/python tools/check_samplers.py --sdvk build/sdvk -m MODEL
        [--size 32] [--steps 8] [--cfg 7.5] [--samplers all] [--schedules discrete,karras]
        [--goldens DIR] [--tol 2e-3] [--backend cpu] [--precision f16]

For each sampler x schedule it runs the same trajectory twice, from the same
start noise, context and per-step noise:
  - the oracle: k-diffusion's sample_* functions (euler, euler_a, heun, dpm2,
    dpm++2m, dpm++2m_sde, dpm++2s_a, lms) with the k-diffusion
    DiscreteEpsDDPMDenoiser around tools/sd_ref.py's UNet, or diffusers'
    DDIMScheduler / DDPMScheduler / LCMScheduler stepping (ddim, ddpm, lcm;
    with a schedule other than their own, diffusers' custom `timesteps=`: the
    training timesteps nearest to the schedule's sigmas);
  - `sdvk stage sample` with --step-noise,
and prints the relative L2 error of the final latents (limit --tol).

The context is random (batch 1, CFG rows [cond; uncond]), so no text encoder
is needed. --goldens DIR also writes the inputs and the oracle's outputs as
.npy files plus a manifest.txt, for the tiny-model test (tests/samplers.cmake).
Needs the tools virtual environment (torch, k-diffusion, diffusers).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sd_ref  # noqa: E402

K_SAMPLERS = ["euler", "euler_a", "heun", "dpm2", "dpm++2m", "dpm++2m_sde", "dpm++2s_a", "lms"]
D_SAMPLERS = ["ddim", "lcm", "ddpm"]


def alphas_cumprod():
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, 0)


class CFGUNet(torch.nn.Module):
    """eps(x, t) with classifier-free guidance over sd_ref's UNet."""

    def __init__(self, m, ctx, cfg):
        super().__init__()
        self.m, self.ctx, self.cfg = m, ctx, cfg
        self.evals = 0

    def forward(self, x, t):
        self.evals += 1
        B = x.shape[0]
        tt = float(t.reshape(-1)[0])
        if self.cfg == 1.0:
            return sd_ref.unet_forward(self.m, x, tt, self.ctx)
        e = sd_ref.unet_forward(self.m, torch.cat([x, x]), tt, self.ctx)
        ec, eu = e[:B], e[B:]
        return eu + self.cfg * (ec - eu)


class NoiseList:
    """The per-step noise, handed out in the order the sampler asks for it."""

    def __init__(self, fields):
        self.fields, self.k = fields, 0

    def __call__(self, *args, **kwargs):
        f = self.fields[self.k]
        self.k += 1
        return f.clone()


def run_k(name, schedule, unet, x0, steps, noise, eta):
    import k_diffusion.sampling as K
    from k_diffusion.external import DiscreteEpsDDPMDenoiser
    den = DiscreteEpsDDPMDenoiser(unet, alphas_cumprod().to(torch.float32), quantize=False)
    if schedule == "karras":
        sig = K.get_sigmas_karras(steps, float(den.sigma_min), float(den.sigma_max))
    elif schedule == "exponential":
        sig = K.get_sigmas_exponential(steps, float(den.sigma_min), float(den.sigma_max))
    else:
        sig = den.get_sigmas(steps)
    x = x0 * sig[0]
    ns = NoiseList(noise)
    fn = {"euler": K.sample_euler, "euler_a": K.sample_euler_ancestral, "heun": K.sample_heun,
          "dpm2": K.sample_dpm_2, "dpm++2m": K.sample_dpmpp_2m, "dpm++2m_sde": K.sample_dpmpp_2m_sde,
          "dpm++2s_a": K.sample_dpmpp_2s_ancestral, "lms": K.sample_lms}[name]
    kw = {}
    if name in ("euler_a", "dpm++2s_a", "dpm++2m_sde"):
        kw = {"noise_sampler": ns, "eta": eta}
    with torch.no_grad():
        out = fn(den, x, sig, disable=True, **kw)
    return out, ns.k


def timesteps_for(schedule, steps):
    """The training timesteps nearest to the schedule's sigmas (k-diffusion's
    sigma_to_t, rounded), for diffusers' custom `timesteps=`."""
    import k_diffusion.sampling as K
    from k_diffusion.external import DiscreteEpsDDPMDenoiser
    den = DiscreteEpsDDPMDenoiser(torch.nn.Identity(), alphas_cumprod().to(torch.float32), quantize=False)
    if schedule == "karras":
        sig = K.get_sigmas_karras(steps, float(den.sigma_min), float(den.sigma_max))
    else:
        sig = K.get_sigmas_exponential(steps, float(den.sigma_min), float(den.sigma_max))
    return [int(round(float(den.sigma_to_t(s)))) for s in sig[:-1]]


def run_d(name, schedule, unet, x0, steps, noise, eta):
    import diffusers.schedulers.scheduling_ddpm as ddpm_mod
    import diffusers.schedulers.scheduling_lcm as lcm_mod
    from diffusers import DDIMScheduler, DDPMScheduler, LCMScheduler
    common = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    ns = NoiseList(noise)
    custom = None if schedule == "discrete" else timesteps_for(schedule, steps)
    if name == "ddim":
        # the SD v1.5 scheduler config
        sch = DDIMScheduler(clip_sample=False, set_alpha_to_one=False, steps_offset=1, **common)
        if custom is None:
            sch.set_timesteps(steps)
            pairs = None
        else:  # DDIMScheduler takes no custom list: its step, with prev from the list
            sch.set_timesteps(steps)
            pairs = list(zip(custom, custom[1:] + [-1]))
    elif name == "ddpm":
        sch = DDPMScheduler(clip_sample=False, **common)
        sch.set_timesteps(steps) if custom is None else sch.set_timesteps(timesteps=custom)
    else:
        sch = LCMScheduler(**common)
        sch.set_timesteps(steps) if custom is None else sch.set_timesteps(timesteps=custom)
    # diffusers draws the step noise itself: hand it ours, in order
    orig = (ddpm_mod.randn_tensor, lcm_mod.randn_tensor)
    ddpm_mod.randn_tensor = lcm_mod.randn_tensor = lambda *a, **k: ns()
    try:
        x = x0 * sch.init_noise_sigma
        with torch.no_grad():
            if name == "ddim" and pairs is not None:
                ac = sch.alphas_cumprod
                for t, prev in pairs:
                    eps = unet(x, torch.tensor([float(t)]))
                    a_t = ac[t]
                    a_p = ac[prev] if prev >= 0 else sch.final_alpha_cumprod
                    x0p = (x - (1 - a_t) ** 0.5 * eps) / a_t ** 0.5
                    x = a_p ** 0.5 * x0p + (1 - a_p) ** 0.5 * eps
            else:
                for t in sch.timesteps:
                    eps = unet(x, t.reshape(1).to(torch.float32))
                    kw = {"eta": eta} if name == "ddim" else {}
                    x = sch.step(eps, t, x, **kw).prev_sample
    finally:
        ddpm_mod.randn_tensor, lcm_mod.randn_tensor = orig
    return x, ns.k


def rel_l2(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sdvk", help="the sdvk binary (omit to only write goldens)")
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--size", type=int, default=32, help="latent side (default 32: a 256x256 picture)")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--cfg", type=float, default=7.5)
    ap.add_argument("--eta", type=float, default=1.0)
    ap.add_argument("--samplers", default="all")
    ap.add_argument("--schedules", default="discrete,karras")
    ap.add_argument("--tol", type=float, default=2e-3)
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--precision", default=None)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--goldens", help="write inputs, oracle outputs and manifest.txt here")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    samplers = K_SAMPLERS + D_SAMPLERS if a.samplers == "all" else a.samplers.split(",")
    schedules = a.schedules.split(",")
    m = sd_ref.Model(a.model)
    ctx_dim = m.w(sd_ref.UNET_P + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight").shape[1] \
        if m.has(sd_ref.UNET_P + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight") else \
        m.w(sd_ref.UNET_P + "middle_block.1.transformer_blocks.0.attn2.to_k.weight").shape[1]
    g = torch.Generator().manual_seed(a.seed)
    ctx = torch.randn(2, 77, ctx_dim, generator=g)
    x0 = torch.randn(1, 4, a.size, a.size, generator=g)
    noise = torch.randn(2 * a.steps, 1, 4, a.size, a.size, generator=g)
    work = a.goldens or tempfile.mkdtemp(prefix="sdvk_samplers_")
    os.makedirs(work, exist_ok=True)
    np.save(os.path.join(work, "context.npy"), ctx.numpy())
    np.save(os.path.join(work, "noise0.npy"), x0.numpy())
    manifest, fails = [], 0
    unet = CFGUNet(m, ctx, a.cfg)
    for sch in schedules:
        for s in samplers:
            t0 = time.time()
            unet.evals = 0
            run = run_k if s in K_SAMPLERS else run_d
            eta = a.eta if s != "ddim" else 0.0
            ref, k = run(s, sch, unet, x0, a.steps, noise, eta)
            t_ref = time.time() - t0
            tag = "%s_%s" % (s.replace("+", "p"), sch)
            np.save(os.path.join(work, tag + ".step_noise.npy"), noise[:k].numpy())
            np.save(os.path.join(work, tag + ".out.npy"), ref.numpy())
            manifest.append("%s %s %d %g %g %d %s" % (s, sch, a.steps, a.cfg, eta, k, tag))
            line = "%-12s %-9s %2d evals, %d noise fields, oracle %.1f s" % (s, sch, unet.evals, k, t_ref)
            if a.sdvk:
                outp = os.path.join(work, tag + ".sdvk.npy")
                cmd = [a.sdvk, "stage", "sample", "--backend", a.backend, "-m", a.model,
                       "--context", os.path.join(work, "context.npy"),
                       "--latent", os.path.join(work, "noise0.npy"), "--steps", str(a.steps),
                       "--cfg", str(a.cfg), "--sampler", s, "--scheduler", sch, "--eta", str(eta),
                       "-o", outp]
                if k:
                    cmd += ["--step-noise", os.path.join(work, tag + ".step_noise.npy")]
                if a.precision:
                    cmd += ["--precision", a.precision]
                if a.threads:
                    cmd += ["--threads", str(a.threads)]
                t1 = time.time()
                r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                if r.returncode != 0:
                    print(line + "  sdvk FAILED:\n" + r.stdout)
                    fails += 1
                    continue
                e = rel_l2(np.load(outp), ref.numpy())
                ok = e <= a.tol
                fails += not ok
                line += ", sdvk %.1f s: rel L2 %.2e %s" % (time.time() - t1, e, "ok" if ok else "FAIL (tol %g)" % a.tol)
            print(line, flush=True)
    with open(os.path.join(work, "manifest.txt"), "w") as f:
        f.write("# sampler schedule steps cfg eta noise_fields tag (inputs: context.npy noise0.npy)\n")
        f.write("\n".join(manifest) + "\n")
    print("%d case(s), %d failed; files in %s" % (len(manifest), fails, work))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
