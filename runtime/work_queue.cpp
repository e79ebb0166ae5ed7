#include "runtime/work_queue.hpp"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace gpa::rt {

namespace {

class thread_work_queue : public work_queue {
public:
  thread_work_queue()
      : thread_([this] {
          run();
        }) {}

  ~thread_work_queue() override {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      stopping_ = true;
      jobs_.clear();
    }
    cv_.notify_all();
    thread_.join();
  }

  void post(std::function<void()> job) override {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
  }

  size_t pending() const override {
    std::lock_guard<std::mutex> guard{mtx_};
    return jobs_.size() + (busy_ ? 1 : 0);
  }

private:
  void run() {
    std::unique_lock<std::mutex> guard{mtx_};
    for (;;) {
      cv_.wait(guard, [this] {
        return stopping_ || !jobs_.empty();
      });
      if (stopping_)
        return;
      auto job = std::move(jobs_.front());
      jobs_.pop_front();
      busy_ = true;
      guard.unlock();
      job();
      guard.lock();
      busy_ = false;
    }
  }

  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool busy_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

} // namespace

std::shared_ptr<work_queue> make_thread_work_queue() {
  return std::make_shared<thread_work_queue>();
}

} // namespace gpa::rt
