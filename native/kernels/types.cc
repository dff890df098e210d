#include "flashdip/types.h"

namespace fd {
namespace {

struct Entry {
  uint32_t id;
  TypeTraits traits;
};

// Block geometry from the GGUF specification; the compute flags say what flashdip implements.
constexpr Entry kTypes[] = {
    {TYPE_F32, {"f32", 1, 4, true, true, true}},
    {TYPE_F16, {"f16", 1, 2, true, true, true}},
    {TYPE_Q4_0, {"q4_0", 32, 18, true, true, true}},
    {TYPE_Q4_1, {"q4_1", 32, 20, true, true, true}},
    {TYPE_Q5_0, {"q5_0", 32, 22, true, true, true}},
    {TYPE_Q5_1, {"q5_1", 32, 24, true, true, true}},
    {TYPE_Q8_0, {"q8_0", 32, 34, true, true, true}},
    {TYPE_Q8_1, {"q8_1", 32, 36, false, false, false}},
    {TYPE_Q2_K, {"q2_k", 256, 84, true, true, true}},
    {TYPE_Q3_K, {"q3_k", 256, 110, true, true, true}},
    {TYPE_Q4_K, {"q4_k", 256, 144, true, true, true}},
    {TYPE_Q5_K, {"q5_k", 256, 176, true, true, true}},
    {TYPE_Q6_K, {"q6_k", 256, 210, true, true, true}},
    {TYPE_Q8_K, {"q8_k", 256, 292, false, false, false}},
    {TYPE_IQ2_XXS, {"iq2_xxs", 256, 66, false, false, false}},
    {TYPE_IQ2_XS, {"iq2_xs", 256, 74, false, false, false}},
    {TYPE_IQ3_XXS, {"iq3_xxs", 256, 98, false, false, false}},
    {TYPE_IQ1_S, {"iq1_s", 256, 50, false, false, false}},
    {TYPE_IQ4_NL, {"iq4_nl", 32, 18, false, false, false}},
    {TYPE_IQ3_S, {"iq3_s", 256, 110, false, false, false}},
    {TYPE_IQ2_S, {"iq2_s", 256, 82, false, false, false}},
    {TYPE_IQ4_XS, {"iq4_xs", 256, 136, false, false, false}},
    {TYPE_I8, {"i8", 1, 1, false, false, false}},
    {TYPE_I16, {"i16", 1, 2, false, false, false}},
    {TYPE_I32, {"i32", 1, 4, false, false, false}},
    {TYPE_I64, {"i64", 1, 8, false, false, false}},
    {TYPE_F64, {"f64", 1, 8, false, false, false}},
    {TYPE_IQ1_M, {"iq1_m", 256, 56, false, false, false}},
    {TYPE_BF16, {"bf16", 1, 2, true, true, true}},
    {TYPE_TQ1_0, {"tq1_0", 256, 54, false, false, false}},
    {TYPE_TQ2_0, {"tq2_0", 256, 66, false, false, false}},
};

}  // namespace

const TypeTraits* type_traits(uint32_t type) {
  for (const Entry& e : kTypes)
    if (e.id == type) return &e.traits;
  return nullptr;
}

const char* type_name(uint32_t type) {
  const TypeTraits* t = type_traits(type);
  return t ? t->name : "unknown";
}

size_t row_bytes(uint32_t type, int64_t n) {
  const TypeTraits* t = type_traits(type);
  if (!t || n < 0 || n % t->block_size != 0) return 0;
  return static_cast<size_t>(n / t->block_size) * t->block_bytes;
}

}  // namespace fd
