// fanout/detail/loop.hpp — one shard's io_context as the Runtime sees it: whether a thread runs it,
// and how to get work done on it from any thread without ever waiting for a loop nobody runs.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>

#include <asio/io_context.hpp>

namespace fanout::detail {

class Loop {
 public:
  /// `owned`: the Runtime runs it on a thread of its own (set_running brackets run()). Otherwise the
  /// application runs it; a marker posted here tells when it first did.
  Loop(asio::io_context& ioc, bool owned);

  asio::io_context& context() noexcept { return ioc_; }
  /// The calling thread is inside this loop's run().
  bool in_this_thread() const noexcept { return ioc_.get_executor().running_in_this_thread(); }
  /// A thread runs this loop now, so posted work gets done: false before it first ran, after it
  /// stopped, and once the Runtime's own thread has left run().
  bool active() const noexcept;

  /// Runs `f` on the loop's thread and returns when it is done. Inline when called on that thread,
  /// or when no thread runs the loop (then nothing else touches the shard's state); if the loop
  /// stops while `f` waits in its queue, `f` is taken back and run here instead.
  void execute(const std::function<void()>& f);
  /// Like execute(), without waiting when it has to post.
  void submit(std::function<void()> f);
  /// Lets about `d` pass while others make progress: on the loop's own thread it runs the loop's
  /// handlers meanwhile (a drain started from a handler needs the loop to flush), else it sleeps.
  void pause(std::chrono::milliseconds d);

  void set_running(bool running) noexcept { running_->store(running, std::memory_order_release); }

 private:
  asio::io_context& ioc_;
  // Owned: inside run(). Handed in: the marker posted by the constructor has run (shared with it:
  // the Runtime may be gone before the loop first runs).
  std::shared_ptr<std::atomic<bool>> running_;
};

}  // namespace fanout::detail
