"""Omost example workflows: LLM → canvas → each regional backend → core KSampler."""

from __future__ import annotations

from tools.build_workflows import example
from tools.workflow import Graph

PROMPT = "a fierce battle of warriors and a dragon"


@example
def omost_llm(g: Graph) -> None:
    """An LLM server (Ollama's default address) writes the canvas; three backends sample the same scene.

    Small size and few steps keep the example quick on CPU; for SD1.5 use 512x512 and 20+ steps.
    """
    llm = g.add("MotionSuite_Omost_LLMServer", base_url="http://127.0.0.1:11434/v1", model="",
                title="LLM server (Ollama, llama.cpp, vLLM, TGI ...)")
    chat = g.add("MotionSuite_Omost_Chat", llm=llm.out(0), text=PROMPT, seed=12345, retries=1)
    canvas = chat.out("canvas")
    layout = g.add("MotionSuite_Omost_Render", canvas=canvas, width=128, height=128)
    g.add("PreviewImage", images=layout.out("layout"), title="Layout")
    ckpt = g.add("CheckpointLoaderSimple", ckpt_name="v1-5-pruned-emaonly.safetensors")
    model, clip, vae = ckpt.out(0), ckpt.out(1), ckpt.out(2)
    negative = g.add("CLIPTextEncode", clip=clip, title="Negative",
                     text="lowres, bad anatomy, bad hands, cropped, worst quality")
    latent = g.add("EmptyLatentImage", width=128, height=128, batch_size=1)

    def sample(model_out, positive, name: str) -> None:
        sampled = g.add("KSampler", model=model_out, positive=positive, negative=negative.out(0),
                        latent_image=latent.out(0), seed=12345, steps=4, cfg=5.0, sampler_name="euler",
                        scheduler="normal", denoise=1.0, title=f"KSampler ({name})")
        image = g.add("VAEDecode", samples=sampled.out(0), vae=vae)
        g.add("SaveImage", images=image.out(0), filename_prefix=f"MotionSuite/omost_{name}")

    masked = g.add("MotionSuite_Omost_MaskConditioning", canvas=canvas, clip=clip)
    sample(model, masked.out(0), "mask")
    dense = g.add("MotionSuite_Omost_RegionAttention", model=model, canvas=canvas, clip=clip,
                  method="dense_diffusion")
    sample(dense.out(0), dense.out(1), "densediffusion")
    multi = g.add("MotionSuite_Omost_MultiDiffusion", model=model, canvas=canvas, clip=clip)
    sample(multi.out(0), multi.out(1), "multidiffusion")
