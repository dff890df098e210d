#include "flashdip/threadpool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FD_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define FD_PAUSE() __asm__ __volatile__("yield")
#else
#define FD_PAUSE() ((void)0)
#endif

namespace fd {

namespace {
// About 20-50 microseconds of polling before sleeping: long enough to cover the gap between the
// matrix-vector products of one token, short enough not to steal a core between tokens.
constexpr int kSpinIterations = 20000;
}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    generation_.fetch_add(1, std::memory_order_release);
  }
  cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::work(int thread) {
  for (;;) {
    const int64_t task = next_.fetch_add(1, std::memory_order_relaxed);
    if (task >= n_tasks_) break;
    (*fn_)(task, thread);
  }
}

void ThreadPool::run(int64_t n_tasks, int max_threads, const std::function<void(int64_t, int)>& fn) {
  if (n_tasks <= 0) return;
  int threads = max_threads < 1 ? 1 : (max_threads > n_threads_ ? n_threads_ : max_threads);
  if (threads > n_tasks) threads = static_cast<int>(n_tasks);
  if (threads == 1) {
    for (int64_t t = 0; t < n_tasks; ++t) fn(t, 0);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    fn_ = &fn;
    n_tasks_ = n_tasks;
    job_threads_ = threads;
    next_.store(0, std::memory_order_relaxed);
    active_.store(threads - 1, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  cv_.notify_all();
  work(0);
  while (active_.load(std::memory_order_acquire) != 0) FD_PAUSE();
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    for (int spin = 0; generation_.load(std::memory_order_acquire) == seen && spin < kSpinIterations; ++spin) FD_PAUSE();
    bool participate;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      if (stop_) return;
      // The generation and the job's thread count change together under the lock, so this worker
      // joins exactly the job it saw (run() cannot start another until this one's workers finish).
      seen = generation_.load(std::memory_order_acquire);
      participate = index < job_threads_;
    }
    if (participate) {
      work(index);
      active_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }
}

}  // namespace fd
