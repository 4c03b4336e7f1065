# The demo model (models/demo/, trained by tools/demo/train.py) is the CLI's
# default when no -m is given. The build tree's copy is used from a build
# directory; an installed sdvk looks for the installed copy first (see
# tools/cli/cmd_generate.c).
target_compile_definitions(sdvk_cli PRIVATE
  SDVK_DEMO_MODEL="${CMAKE_SOURCE_DIR}/models/demo/sdvk-demo.safetensors"
  SDVK_DEMO_MODEL_INSTALLED="${CMAKE_INSTALL_PREFIX}/share/sdvk/models/demo/sdvk-demo.safetensors")
