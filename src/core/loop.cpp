#include "fanout/detail/loop.hpp"

#include <condition_variable>
#include <mutex>
#include <thread>

#include <asio/post.hpp>

namespace fanout::detail {

Loop::Loop(asio::io_context& ioc, bool owned) : ioc_(ioc), running_(std::make_shared<std::atomic<bool>>(false)) {
  if (!owned) asio::post(ioc_, [flag = running_] { flag->store(true, std::memory_order_release); });
}

bool Loop::active() const noexcept { return running_->load(std::memory_order_acquire) && !ioc_.stopped(); }

namespace {
/// A posted call that the poster can take back if the loop stops before running it.
struct Task {
  enum State { pending, running, done, taken_back };
  std::function<void()> f;
  std::mutex m;
  std::condition_variable cv;
  State state = pending;

  bool claim(State to) {
    std::lock_guard lock(m);
    if (state != pending) return false;
    state = to;
    return true;
  }
  void finish() {
    {
      std::lock_guard lock(m);
      state = done;
    }
    cv.notify_all();
  }
};
}  // namespace

void Loop::execute(const std::function<void()>& f) {
  if (in_this_thread() || !active()) return f();
  auto task = std::make_shared<Task>();
  task->f = f;
  asio::post(ioc_, [task] {
    if (!task->claim(Task::running)) return;
    task->f();
    task->finish();
  });
  std::unique_lock lock(task->m);
  while (task->state != Task::done) {
    task->cv.wait_for(lock, std::chrono::milliseconds(10));
    if (task->state == Task::pending && !active()) {
      task->state = Task::taken_back;
      lock.unlock();
      return f();
    }
  }
}

void Loop::submit(std::function<void()> f) {
  if (in_this_thread() || !active()) return f();
  asio::post(ioc_, std::move(f));
}

void Loop::pause(std::chrono::milliseconds d) {
  if (!in_this_thread() || ioc_.stopped()) return std::this_thread::sleep_for(d);
  // poll() first: with one thread, work posted by the handler we are in waits in that handler's
  // private queue, which poll() hands over and run_one_for() would not (asio's scheduler).
  ioc_.poll();
  if (!ioc_.stopped()) ioc_.run_one_for(d);
}

}  // namespace fanout::detail
