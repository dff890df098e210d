#include "common.h"

namespace fd_addon {

Napi::Object init(Napi::Env env, Napi::Object exports) {
  init_gguf(env, exports);
  init_kernels(env, exports);
  init_model(env, exports);
  init_file(env, exports);
  return exports;
}

}  // namespace fd_addon

static Napi::Object Init(Napi::Env env, Napi::Object exports) { return fd_addon::init(env, exports); }

NODE_API_MODULE(flashdip, Init)
