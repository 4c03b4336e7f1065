# The demo model (models/demo/, trained by tools/demo/train.py) is the CLI's
# default when no -m is given. An installed sdvk finds the installed copy
# relative to its own executable (<bin>/../share/sdvk/models/demo); a binary
# in the build tree falls back to the source tree's copy (see
# tools/cli/cmd_generate.c).
target_compile_definitions(sdvk_cli PRIVATE
  SDVK_DEMO_MODEL="${CMAKE_SOURCE_DIR}/models/demo/sdvk-demo.safetensors")
