// HTTP POSTs to the backend, off the I/O threads: a bounded queue and a fixed number of workers,
// each with one libcurl handle that keeps its connection alive. A request is sent once (no retries)
// and ends within the timeout counted from submit(), time in the queue included.
//
// Thread safety: submit() and stats() from any thread; `done` runs on a worker thread (or in
// stop(), for what was still queued). stop() from one thread, once (the destructor calls it).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace relay {

class BackendPool {
 public:
  struct Options {
    std::string base_url;  // "http://127.0.0.1:9000/fanout"; a request goes to base_url + path
    std::chrono::milliseconds timeout = std::chrono::seconds(3);  // per request, from submit()
    std::size_t workers = 16;                                     // requests in flight at most
    std::size_t max_queue = 1024;                                 // requests waiting for a worker
    std::size_t max_queue_bytes = 16 << 20;                       // their bodies, in total
    std::size_t max_response_bytes = 64 * 1024;                   // a larger answer is a bad answer
  };

  enum class Outcome {
    ok,           // 2xx, body read
    http_error,   // another status
    timeout,      // no complete answer within the timeout
    unreachable,  // cannot connect (refused, no route, DNS) or the connection broke
    too_large,    // answer past max_response_bytes
    stopped,      // the pool stopped before the request was sent
  };
  struct Result {
    Outcome outcome = Outcome::ok;
    long http_status = 0;
    std::string body;
    std::string error;  // libcurl's words, for the log
  };
  using Done = std::function<void(Result)>;

  struct Stats {
    std::uint64_t sent = 0;     // requests handed to libcurl
    std::uint64_t ok = 0;       // 2xx
    std::uint64_t failed = 0;   // every other outcome, but stopped
    std::uint64_t refused = 0;  // submit() found the queue full
    std::uint64_t queued = 0;   // waiting now
    std::uint64_t in_flight = 0;
  };

  explicit BackendPool(Options options);
  ~BackendPool();
  BackendPool(const BackendPool&) = delete;
  BackendPool& operator=(const BackendPool&) = delete;

  /// Queues a POST of `body` (application/json) to base_url + path. False, with `done` not called,
  /// when the queue holds `max_queue` requests (or `limit` when smaller), or their bytes would pass
  /// max_queue_bytes: the caller answers its client at once.
  bool submit(std::string_view path, std::string body, Done done, std::size_t limit = SIZE_MAX);
  /// Stops taking requests; waits up to `grace` for the queue to be sent, then ends what is left
  /// with Outcome::stopped and joins the workers (an answer still in flight bounds it by the timeout).
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(0));

  Stats stats() const;
  const Options& options() const noexcept { return options_; }

 private:
  struct Job {
    std::string url;
    std::string body;
    Done done;
    std::chrono::steady_clock::time_point deadline;
  };
  void work();

  Options options_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable drained_;
  std::deque<Job> queue_;
  std::size_t queued_bytes_ = 0;
  bool stopping_ = false;
  Stats stats_;
  std::vector<std::thread> workers_;
};

const char* to_string(BackendPool::Outcome o) noexcept;

}  // namespace relay
