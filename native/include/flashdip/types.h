// Tensor element types, numbered as in GGUF/ggml so that the file's type ids can be used directly.
#pragma once
#include <cstddef>
#include <cstdint>

namespace fd {

enum Type : uint32_t {
  TYPE_F32 = 0,
  TYPE_F16 = 1,
  TYPE_Q4_0 = 2,
  TYPE_Q4_1 = 3,
  TYPE_Q5_0 = 6,
  TYPE_Q5_1 = 7,
  TYPE_Q8_0 = 8,
  TYPE_Q8_1 = 9,
  TYPE_Q2_K = 10,
  TYPE_Q3_K = 11,
  TYPE_Q4_K = 12,
  TYPE_Q5_K = 13,
  TYPE_Q6_K = 14,
  TYPE_Q8_K = 15,
  TYPE_IQ2_XXS = 16,
  TYPE_IQ2_XS = 17,
  TYPE_IQ3_XXS = 18,
  TYPE_IQ1_S = 19,
  TYPE_IQ4_NL = 20,
  TYPE_IQ3_S = 21,
  TYPE_IQ2_S = 22,
  TYPE_IQ4_XS = 23,
  TYPE_I8 = 24,
  TYPE_I16 = 25,
  TYPE_I32 = 26,
  TYPE_I64 = 27,
  TYPE_F64 = 28,
  TYPE_IQ1_M = 29,
  TYPE_BF16 = 30,
  TYPE_TQ1_0 = 34,
  TYPE_TQ2_0 = 35,
  TYPE_COUNT = 40,
};

struct TypeTraits {
  const char* name;      // "q4_0"; nullptr for ids that are not a known type
  uint32_t block_size;   // elements per block
  uint32_t block_bytes;  // bytes per block
  bool can_dequantize;   // dequantize_row exists
  bool can_compute;      // dense GEMV kernels exist (engine can run a matrix of this type)
  bool can_quantize;     // quantize_row exists (make-model, convert)
};

// Traits of a type id; nullptr when the id is unknown.
const TypeTraits* type_traits(uint32_t type);
const char* type_name(uint32_t type);  // "unknown" for unknown ids
// Bytes of a row of n elements; 0 when n is not a multiple of the block size or the type is unknown.
size_t row_bytes(uint32_t type, int64_t n);

}  // namespace fd
