#include "flashdip/threadpool.h"

#include <chrono>

namespace fd {

namespace {
// Workers poll for the next job this long before sleeping: long enough to cover the gap between the
// matrix-vector products of one token, short enough not to steal a core between tokens. The polling
// loops use plain loads, not PAUSE: under KVM, PAUSE loops trigger pause-loop exits that deschedule
// the vCPU, which made two threads ten times slower than one on a 2-vCPU machine.
constexpr auto kSpinTime = std::chrono::microseconds(200);

template <typename Done>
bool spin_until(Done done) {
  const auto deadline = std::chrono::steady_clock::now() + kSpinTime;
  for (;;) {
    for (int i = 0; i < 256; ++i)
      if (done()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
  }
}
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
  while (active_.load(std::memory_order_acquire) != 0) {
  }
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    spin_until([&] { return generation_.load(std::memory_order_acquire) != seen; });
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
