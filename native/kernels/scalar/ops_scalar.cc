// Scalar twins of flashdip/ops.h: the oracle the SIMD versions are tested against, and the kernels
// used with FLASHDIP_ISA=scalar. They are the loops the forward pass had before it had SIMD versions,
// so the scalar ISA computes exactly what it did then.
#include <algorithm>
#include <cmath>

#include "flashdip/quants.h"
#include "kernels/kernels_internal.h"

namespace fd {

void rmsnorm_f32__scalar(const float* x, const float* w, float* out, int64_t n, float eps) {
  double sum = 0;  // double, as ggml does, so the norm matches llama.cpp's to the last bits
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
  const float scale = 1.0f / std::sqrt(static_cast<float>(sum / static_cast<double>(n)) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * w[i];
}

void rope_f32__scalar(float* vec, int64_t heads, int64_t head_dim, int64_t rot, const float* cs, const float* sn,
                      bool neox) {
  const int64_t half = rot / 2;
  for (int64_t h = 0; h < heads; ++h) {
    float* v = vec + h * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      const int64_t a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
      const float x0 = v[a], x1 = v[b];
      v[a] = x0 * cs[i] - x1 * sn[i];
      v[b] = x0 * sn[i] + x1 * cs[i];
    }
  }
}

void softmax_f32__scalar(float* s, int64_t n) {
  float mx = -INFINITY;
  for (int64_t j = 0; j < n; ++j) mx = std::max(mx, s[j]);
  double sum = 0;
  for (int64_t j = 0; j < n; ++j) {
    s[j] = std::exp(s[j] - mx);
    sum += s[j];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t j = 0; j < n; ++j) s[j] *= inv;
}

void silu_mul_f32__scalar(float* g, const float* u, float* h, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float ui = u[i];  // read before h[i] is written: h may be u
    g[i] = g[i] / (1.0f + std::exp(-g[i]));
    h[i] = g[i] * ui;
  }
}

void exp_f32__scalar(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}

namespace {

// Row j of a K/V slice as f32: f32 rows are used in place, f16 rows are widened (exactly) into buf,
// which has room for kRowBuf floats; a wider f16 row is read element by element through kv_elem.
constexpr int64_t kRowBuf = 512;
inline float kv_elem(const float* row, int64_t i) { return row[i]; }
inline float kv_elem(const uint16_t* row, int64_t i) { return fp16_to_fp32(row[i]); }
inline const float* as_f32(const float* row, int64_t, float*) { return row; }
inline const float* as_f32(const uint16_t* row, int64_t hd, float* buf) {
  if (hd > kRowBuf) return nullptr;
  for (int64_t i = 0; i < hd; ++i) buf[i] = fp16_to_fp32(row[i]);
  return buf;
}

template <class T>
void scores(const float* q, int64_t nq, int64_t hd, const void* k, size_t k_stride, int64_t len, float scale,
            float* s, int64_t s_stride) {
  float buf[kRowBuf];
  for (int64_t j = 0; j < len; ++j) {
    const T* kr = reinterpret_cast<const T*>(static_cast<const uint8_t*>(k) + static_cast<size_t>(j) * k_stride);
    const float* kf = as_f32(kr, hd, buf);
    for (int64_t g = 0; g < nq; ++g) {
      const float* qg = q + g * hd;
      float d = 0;
      if (kf) {
        for (int64_t i = 0; i < hd; ++i) d += qg[i] * kf[i];
      } else {
        for (int64_t i = 0; i < hd; ++i) d += qg[i] * kv_elem(kr, i);
      }
      s[g * s_stride + j] = d * scale;
    }
  }
}

template <class T>
void values(const float* p, int64_t p_stride, int64_t nq, int64_t hd, const void* v, size_t v_stride, int64_t len,
            float* out) {
  float buf[kRowBuf];
  std::fill(out, out + nq * hd, 0.0f);
  for (int64_t j = 0; j < len; ++j) {
    const T* vr = reinterpret_cast<const T*>(static_cast<const uint8_t*>(v) + static_cast<size_t>(j) * v_stride);
    const float* vf = as_f32(vr, hd, buf);
    for (int64_t g = 0; g < nq; ++g) {
      const float pj = p[g * p_stride + j];
      float* og = out + g * hd;
      if (vf) {
        for (int64_t i = 0; i < hd; ++i) og[i] += pj * vf[i];
      } else {
        for (int64_t i = 0; i < hd; ++i) og[i] += pj * kv_elem(vr, i);
      }
    }
  }
}

}  // namespace

void attn_scores_f32__scalar(const float* q, int64_t nq, int64_t hd, const void* k, size_t k_stride, int64_t len,
                             float scale, float* s, int64_t s_stride) {
  scores<float>(q, nq, hd, k, k_stride, len, scale, s, s_stride);
}
void attn_scores_f16__scalar(const float* q, int64_t nq, int64_t hd, const void* k, size_t k_stride, int64_t len,
                             float scale, float* s, int64_t s_stride) {
  scores<uint16_t>(q, nq, hd, k, k_stride, len, scale, s, s_stride);
}
void attn_values_f32__scalar(const float* p, int64_t p_stride, int64_t nq, int64_t hd, const void* v,
                             size_t v_stride, int64_t len, float* out) {
  values<float>(p, p_stride, nq, hd, v, v_stride, len, out);
}
void attn_values_f16__scalar(const float* p, int64_t p_stride, int64_t nq, int64_t hd, const void* v,
                             size_t v_stride, int64_t len, float* out) {
  values<uint16_t>(p, p_stride, nq, hd, v, v_stride, len, out);
}

}  // namespace fd
