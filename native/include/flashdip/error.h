// The one exception type native code throws for anything a user can cause. The addon turns it into
// a JS FlashdipError with the same code; native code never aborts or exits on user input.
#pragma once
#include <stdexcept>
#include <string>

namespace fd {

class Error : public std::runtime_error {
 public:
  Error(const char* code, const std::string& message) : std::runtime_error(message), code_(code) {}
  const char* code() const { return code_; }

 private:
  const char* code_;  // a string literal such as "ERR_GGUF_TRUNCATED"
};

[[noreturn]] inline void fail(const char* code, const std::string& message) { throw Error(code, message); }

}  // namespace fd
