// Shared helpers for the node-addon-api glue: error mapping and argument checks. The TypeScript
// layer validates options first; these checks keep a direct caller of the raw binding from
// crashing the process all the same.
#pragma once
// A JS call that reaches the addon while a worker_thread is being terminated cannot throw its error
// (napi_throw fails: JS can no longer run); without this node-addon-api turns that into a C++
// exception nothing catches, and the whole process aborts. With it the error is dropped: the
// environment is going away and nothing is waiting for it. Every addon file includes napi.h through
// this header only, so the inline functions are the same in all of them.
#ifdef SRC_NAPI_H_
#error "include common.h before napi.h"
#endif
#define NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS
#include <napi.h>

#include <exception>
#include <new>
#include <string>

#include "flashdip/error.h"

namespace fd_addon {

inline Napi::Error make_error(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

// Runs fn and turns any C++ exception into a JS exception with a stable code.
template <typename F>
auto guard(Napi::Env env, F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const fd::Error& e) {
    throw make_error(env, e.code(), e.what());
  } catch (const std::bad_alloc&) {
    throw make_error(env, "ERR_INTERNAL", "out of memory");
  } catch (const std::exception& e) {
    throw make_error(env, "ERR_INTERNAL", e.what());
  }
}

// An error captured on a worker thread, to be rethrown on the main thread.
struct CapturedError {
  std::string code;
  std::string message;
  bool set = false;
  template <typename F>
  void run(F&& fn) {
    try {
      fn();
    } catch (const fd::Error& e) {
      set = true, code = e.code(), message = e.what();
    } catch (const std::bad_alloc&) {
      set = true, code = "ERR_INTERNAL", message = "out of memory";
    } catch (const std::exception& e) {
      set = true, code = "ERR_INTERNAL", message = e.what();
    }
  }
  Napi::Value value(Napi::Env env) const { return make_error(env, code.c_str(), message).Value(); }
};

// An AsyncWorker settling a promise. Completion after the environment started tearing down (a
// terminated worker_thread) is a no-op: node-addon-api's own OnWorkComplete turns the failed
// resolve into a C++ exception it cannot throw, and the process aborts.
class SafeWorker : public Napi::AsyncWorker {
 public:
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  explicit SafeWorker(Napi::Env env) : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {}
  // Bookkeeping that calls no JS; runs on the main thread whatever state the environment is in.
  virtual void Finish(Napi::Env env) {}
  // Resolves or rejects deferred_; may throw Napi::Error.
  virtual void Settle(Napi::Env env) = 0;

  void OnWorkComplete(Napi::Env env, napi_status status) override {
    Finish(env);
    if (status != napi_cancelled) {
      try {
        Settle(env);
      } catch (const Napi::Error& e) {
        // A live environment gets the error; a dying one cannot run JS and nothing waits for it.
        try {
          deferred_.Reject(e.Value());
        } catch (...) {
        }
      } catch (...) {
      }
    }
    Destroy();
  }
  void OnOK() override {}

  Napi::Promise::Deferred deferred_;
};

inline void check(bool ok, Napi::Env env, const std::string& message) {
  if (!ok) throw make_error(env, "ERR_INVALID_ARGUMENT", message);
}

inline std::string arg_string(const Napi::CallbackInfo& info, size_t i, const char* name) {
  check(info.Length() > i && info[i].IsString(), info.Env(), std::string(name) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

inline double arg_number(const Napi::CallbackInfo& info, size_t i, const char* name) {
  check(info.Length() > i && info[i].IsNumber(), info.Env(), std::string(name) + " must be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

// An optional numeric property of an options object.
inline double opt_number(const Napi::Object& o, const char* key, double def) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return def;
  check(v.IsNumber(), o.Env(), std::string(key) + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

void init_model(Napi::Env env, Napi::Object exports);
void init_gguf(Napi::Env env, Napi::Object exports);
void init_kernels(Napi::Env env, Napi::Object exports);
void init_file(Napi::Env env, Napi::Object exports);

}  // namespace fd_addon
