// A persistent pool of worker threads for data-parallel loops. The caller's thread takes part, so a
// pool of n threads starts n-1 workers. Workers spin briefly after a job (decode issues hundreds of
// small jobs per token) and then sleep on a condition variable, so an idle pool costs nothing and
// two cores are never both burnt by spinning while the other process needs one.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace fd {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs fn(task, thread) for task in [0, n_tasks) on up to `max_threads` threads (<= size()); returns
  // when all are done. Tasks are claimed dynamically. Not reentrant; one caller at a time.
  void run(int64_t n_tasks, int max_threads, const std::function<void(int64_t task, int thread)>& fn);

 private:
  void worker(int index);
  void work(int thread);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> active_{0};     // workers still inside the current job
  std::atomic<int64_t> next_{0};   // next task to claim
  int64_t n_tasks_ = 0;
  int job_threads_ = 1;
  const std::function<void(int64_t, int)>* fn_ = nullptr;
  bool stop_ = false;
};

}  // namespace fd
