#include "backend_pool.hpp"

#include <curl/curl.h>

#include <memory>
#include <mutex>

namespace relay {
namespace {

struct CurlDeleter {
  void operator()(CURL* h) const noexcept { curl_easy_cleanup(h); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const noexcept { curl_slist_free_all(l); }
};

// The answer, up to a bound: past it the transfer is aborted (libcurl sees a short write).
struct Sink {
  std::string* body;
  std::size_t max;
  bool overflow = false;
};
std::size_t on_data(char* data, std::size_t size, std::size_t n, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const std::size_t bytes = size * n;
  if (sink->body->size() + bytes > sink->max) {
    sink->overflow = true;
    return 0;
  }
  sink->body->append(data, bytes);
  return bytes;
}

BackendPool::Result failure(BackendPool::Outcome outcome, std::string error) {
  BackendPool::Result r;
  r.outcome = outcome;
  r.error = std::move(error);
  return r;
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

const char* to_string(BackendPool::Outcome o) noexcept {
  switch (o) {
    case BackendPool::Outcome::ok: return "ok";
    case BackendPool::Outcome::http_error: return "http error";
    case BackendPool::Outcome::timeout: return "timeout";
    case BackendPool::Outcome::unreachable: return "unreachable";
    case BackendPool::Outcome::too_large: return "answer too large";
    case BackendPool::Outcome::stopped: return "stopped";
  }
  return "?";
}

BackendPool::BackendPool(Options options) : options_(std::move(options)) {
  global_init();
  if (options_.workers == 0) options_.workers = 1;
  workers_.reserve(options_.workers);
  for (std::size_t i = 0; i < options_.workers; ++i) workers_.emplace_back([this] { work(); });
}

BackendPool::~BackendPool() { stop(); }

bool BackendPool::submit(std::string_view path, std::string body, Done done, std::size_t limit) {
  Job job{options_.base_url + std::string(path), std::move(body), std::move(done),
          std::chrono::steady_clock::now() + options_.timeout};
  {
    std::lock_guard lock(mutex_);
    const std::size_t bytes = job.body.size();
    if (stopping_ || queue_.size() >= std::min(limit, options_.max_queue) ||
        queued_bytes_ + bytes > options_.max_queue_bytes) {
      ++stats_.refused;
      return false;
    }
    queued_bytes_ += bytes;
    queue_.push_back(std::move(job));
  }
  wake_.notify_one();
  return true;
}

void BackendPool::stop(std::chrono::milliseconds grace) {
  std::deque<Job> left;
  {
    std::unique_lock lock(mutex_);
    if (workers_.empty()) return;
    stopping_ = true;
    wake_.notify_all();
    drained_.wait_for(lock, grace, [this] { return queue_.empty(); });
    left.swap(queue_);
    queued_bytes_ = 0;
  }
  wake_.notify_all();
  for (auto& job : left) job.done(failure(Outcome::stopped, "the relay is stopping"));
  for (auto& w : workers_) w.join();
  workers_.clear();
}

BackendPool::Stats BackendPool::stats() const {
  std::lock_guard lock(mutex_);
  auto s = stats_;
  s.queued = queue_.size();
  return s;
}

void BackendPool::work() {
  std::unique_ptr<CURL, CurlDeleter> handle(curl_easy_init());
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  // "Expect:" off: libcurl would otherwise wait for a 100 Continue on larger bodies.
  for (const char* h : {"Content-Type: application/json", "Expect:"})
    headers.reset(curl_slist_append(headers.release(), h));
  char error_text[CURL_ERROR_SIZE];
  CURL* h = handle.get();
  if (h) {
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for DNS timeouts
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(h, CURLOPT_USERAGENT, "fanout-relay");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &on_data);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_text);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  }
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left to send
      job = std::move(queue_.front());
      queue_.pop_front();
      queued_bytes_ -= job.body.size();
      ++stats_.in_flight;
      if (queue_.empty()) drained_.notify_all();
    }
    Result r;
    const auto now = std::chrono::steady_clock::now();
    if (!h) {
      r = failure(Outcome::unreachable, "curl_easy_init failed");
    } else if (now >= job.deadline) {
      r = failure(Outcome::timeout, "expired while queued");
    } else {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(job.deadline - now).count();
      Sink sink{&r.body, options_.max_response_bytes};
      error_text[0] = '\0';
      curl_easy_setopt(h, CURLOPT_URL, job.url.c_str());
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, job.body.data());
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(job.body.size()));
      curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(std::max<long long>(left, 1)));
      curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::max<long long>(left, 1)));
      curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
      const CURLcode rc = curl_easy_perform(h);
      {
        std::lock_guard lock(mutex_);
        ++stats_.sent;
      }
      if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.http_status);
        r.outcome = r.http_status >= 200 && r.http_status < 300 ? Outcome::ok : Outcome::http_error;
      } else {
        r.outcome = rc == CURLE_OPERATION_TIMEDOUT             ? Outcome::timeout
                    : rc == CURLE_WRITE_ERROR && sink.overflow ? Outcome::too_large
                                                               : Outcome::unreachable;
        r.error = error_text[0] ? error_text : curl_easy_strerror(rc);
        r.body.clear();
      }
    }
    {
      std::lock_guard lock(mutex_);
      --stats_.in_flight;
      ++(r.outcome == Outcome::ok ? stats_.ok : stats_.failed);
    }
    job.done(std::move(r));
  }
}

}  // namespace relay
